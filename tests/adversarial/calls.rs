//! Unary and batch calls: deadlines, cancellation, field limits, bounded answers, status codes.
