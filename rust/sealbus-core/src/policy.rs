//! policy: (under construction)
