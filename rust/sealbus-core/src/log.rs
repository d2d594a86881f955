//! log: (under construction)
