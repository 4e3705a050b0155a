//! git integration: the credential-helper format that `wbl credential` speaks, git's reading of
//! credential URLs, and `credential-store`'s plaintext file that `wbl migrate` empties.

pub mod credential;
pub mod store_file;
pub mod url;
