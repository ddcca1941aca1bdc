//! Lab helpers (filled in next).
