//! [`Error`]: everything that can go wrong, with what to do about it.

/// The error of every fallible stowage operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A migrations folder given at start-up does not follow the naming rules.
    #[error("the migrations folder is invalid; fix these files and rebuild:\n  {}", problems.join("\n  "))]
    InvalidSource {
        /// One line per problem, each naming its file.
        problems: Vec<String>,
    },
}
