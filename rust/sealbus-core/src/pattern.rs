//! pattern: (under construction)
