//! Identity: roles and permissions, sessions, and resolving a caller to a viewer.

pub mod permissions;
pub mod sessions;
pub mod viewer;

pub use permissions::{Permission, Role};
pub use viewer::{presented_token, require_permission, require_session, resolve, Viewer};
