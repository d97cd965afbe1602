//! Integration tests of stowage; the helpers they share live here.
//!
//! The README follows, so that its examples are compiled and run as doctests.
#![doc = include_str!("../../README.md")]
