//! Argument and result shapes many functions share.

use serde::{Deserialize, Serialize};
use values::Typed;

/// The arguments of a function that takes none but the web client's optional `sessionToken`
/// (refusing it was a defect of the reference system).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, Typed)]
#[typed(session)]
pub struct SessionArgs {}

/// `{success: true}`, the answer of mutations that have nothing else to say.
#[derive(Clone, Copy, Debug, Default, Serialize, Typed)]
pub struct Success {
    pub success: bool,
}

impl Success {
    pub const YES: Success = Success { success: true };
}
