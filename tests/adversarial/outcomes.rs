//! Outcomes that must never suppress, and scripts whose cost the operation budget missed.
