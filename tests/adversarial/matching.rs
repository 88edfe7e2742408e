//! Matching and provider detection on texts built to make them quadratic.
