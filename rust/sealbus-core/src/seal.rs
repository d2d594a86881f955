//! seal: (under construction)
