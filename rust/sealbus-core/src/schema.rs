//! schema: (under construction)
