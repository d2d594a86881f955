//! route: (under construction)
