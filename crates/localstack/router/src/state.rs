//! What every request handler shares: the functions, the build projects, the armed faults and
//! the way to moto. The server builds it once; the dispatch and the control API both read it,
//! so it lives apart from either.

use std::sync::Arc;

use crate::codebuild::CodeBuild;
use crate::faults::Faults;
use crate::lambda::Functions;
use crate::proxy::Proxy;

#[derive(Debug)]
pub(crate) struct Shared {
    pub functions: Arc<Functions>,
    pub codebuild: CodeBuild,
    pub faults: Arc<Faults>,
    pub proxy: Proxy,
}
