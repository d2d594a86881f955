//! envelope: (under construction)
