//! [`Api`]: the router under construction together with its access declarations, so
//! that no route is added without saying who may call it. The route files build their
//! parts with it and `server` merges them; it never handles a request itself. It also
//! lends the route files [`also_at`], for a handler documented at two paths.

use std::sync::Arc;

use axum::Router;
use axum::routing::MethodRouter;

use crate::server::auth::{Access, AccessTable};
use crate::server::state::App;

/// Routes with their access declarations; every route is added through [`Api::route`].
#[derive(Debug, Default)]
pub struct Api {
    pub(super) router: Router<Arc<App>>,
    pub(super) access: AccessTable,
}

impl Api {
    pub fn new() -> Api {
        Api::default()
    }

    /// Adds a route and declares who may call it.
    pub fn route(
        mut self,
        path: &'static str,
        access: Access,
        handler: MethodRouter<Arc<App>>,
    ) -> Api {
        self.access.declare(None, path, access);
        self.router = self.router.route(path, handler);
        self
    }

    /// Adds one method of a route whose methods need different access; the method's
    /// declaration wins over the path's.
    pub fn route_method(
        mut self,
        method: http::Method,
        path: &'static str,
        access: Access,
        handler: MethodRouter<Arc<App>>,
    ) -> Api {
        self.access.declare(Some(method), path, access);
        self.router = self.router.route(path, handler);
        self
    }

    pub fn merge(mut self, other: Api) -> Api {
        for (method, path, access) in other.access.entries() {
            self.access.declare(method.cloned(), path, access);
        }
        self.router = self.router.merge(other.router);
        self
    }

    /// The declarations, for tests that walk every route.
    pub fn access(&self) -> &AccessTable {
        &self.access
    }
}

/// Documents the operation at `method` `from` also at `to`, for a handler that serves
/// two routes (an annotation names one path); the copy gets its own operation id.
pub fn also_at(doc: &mut utoipa::openapi::OpenApi, method: http::Method, from: &str, to: &str) {
    let Some(mut item) = doc.paths.paths.get(from).cloned() else {
        return;
    };
    let target = doc.paths.paths.entry(to.to_string()).or_default();
    let renamed = |operation: Option<utoipa::openapi::path::Operation>| {
        operation.map(|mut o| {
            o.operation_id = o
                .operation_id
                .map(|id| format!("{id}{}", to.replace(['/', '.', '{', '}', '-'], "_")));
            o
        })
    };
    match method {
        http::Method::GET => target.get = renamed(item.get.take()),
        http::Method::POST => target.post = renamed(item.post.take()),
        http::Method::PUT => target.put = renamed(item.put.take()),
        http::Method::PATCH => target.patch = renamed(item.patch.take()),
        http::Method::DELETE => target.delete = renamed(item.delete.take()),
        _ => {}
    }
}
