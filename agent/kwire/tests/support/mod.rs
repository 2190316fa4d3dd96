//! Test support shared by integration test files (`mod support;`).
//!
//! Each test file that says `mod support;` compiles this whole tree again, so helpers it does not use
//! would warn as dead code: the submodules allow that. Nothing here may hold a `#[test]`, or every
//! test binary that includes it would run that test again.

pub mod rotel;
