//! `serve --dev` only: the state-reset endpoints of the local AWS emulators
//! that test suites already call between tests, so a suite written for moto
//! or LocalStack runs unchanged against ferrokms:
//!
//! - `POST /moto-api/reset` (moto's server mode): everything; answers 200
//!   with `{"status": "ok"}`, as moto does.
//! - `POST /_localstack/state/reset` (LocalStack): everything;
//!   `POST /_localstack/state/kms/reset` and `.../iam/reset`: that
//!   service's state only. Each answers 200 with an empty body, as
//!   LocalStack does.
//!
//! What "everything" is: [`ferrokms_kms::Kms::reset_all`] (every key,
//! alias, grant, key policy, tag and key material) and
//! [`ferrokms_iam::Directory::reset_identities`] (every user, role, group,
//! managed policy and user access key) and
//! [`ferrokms_analyzer::Analyzers::reset_all`] (every analyzer); accounts
//! and their root access keys stay. docs/identity.md, "Resetting a --dev server", says so for users.
//!
//! Unauthenticated, like moto's and LocalStack's (their clients send a
//! plain POST): a `--dev` server already lets any caller act as any
//! account's root. Without `--dev` these routes do not exist, so the paths
//! answer as every unknown request does. One reset runs at a time; a
//! request waits at most [`RESET_WAIT`] for the one before it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use ferrokms_iam::reset::ResetReport as IamReport;
use ferrokms_kms::reset::ResetReport as KmsReport;

use crate::{audit, hdr, ids, App};

/// moto's reset path.
pub const MOTO_RESET: &str = "/moto-api/reset";
/// LocalStack's reset path for every service.
pub const LOCALSTACK_RESET: &str = "/_localstack/state/reset";
/// LocalStack's reset path for KMS only.
pub const LOCALSTACK_KMS_RESET: &str = "/_localstack/state/kms/reset";
/// LocalStack's reset path for IAM only.
pub const LOCALSTACK_IAM_RESET: &str = "/_localstack/state/iam/reset";

/// How long a reset waits for the one running before it.
pub const RESET_WAIT: Duration = Duration::from_secs(30);

/// The audit record's event name (a ferrokms event, not an AWS operation,
/// named like the test clock's `FerrokmsAdvanceClock`).
pub const AUDIT_EVENT: &str = "FerrokmsDevReset";

/// Serializes resets: waiting here costs a task, not a blocking thread.
static RUNNING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What a reset clears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// KMS, IAM and Access Analyzer's analyzers.
    All,
    /// KMS only.
    Kms,
    /// IAM only.
    Iam,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Scope::All => "all",
            Scope::Kms => "kms",
            Scope::Iam => "iam",
        }
    }
}

/// The answer style of the emulator whose path was called.
#[derive(Debug, Clone, Copy)]
enum Style {
    Moto,
    LocalStack,
}

/// Why a reset failed.
#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    /// Deleting the KMS state failed; nothing of it was deleted.
    #[error("resetting KMS failed: {0}")]
    Kms(#[from] ferrokms_kms::KmsError),
    /// Deleting the identities failed; none of them was deleted.
    #[error("resetting IAM failed: {0}")]
    Iam(#[from] ferrokms_iam::IamError),
    /// The cluster write lock could not be taken (shared store).
    #[error("the cluster write lock failed: {0}")]
    Cluster(#[from] ferrokms_store::StoreError),
    /// Deleting the Access Analyzer analyzers failed; none was deleted.
    #[error("resetting Access Analyzer failed: {0}")]
    Analyzers(#[from] ferrokms_analyzer::AnalyzerError),
    /// The blocking task did not finish (panicked or cancelled).
    #[error("the reset task failed")]
    Task,
}

/// What one reset removed.
#[derive(Debug, Default, Clone, Copy)]
pub struct Report {
    /// KMS's part, when it was reset.
    pub kms: Option<KmsReport>,
    /// IAM's part, when it was reset.
    pub iam: Option<IamReport>,
    /// How many (account, Region) documents of Access Analyzer analyzers
    /// were deleted (a reset of everything).
    pub analyzers: Option<usize>,
}

/// The reset routes, added to the router only under `--dev`.
pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(
            MOTO_RESET,
            post(|s: State<Arc<App>>, r: Request| serve(s, r, Scope::All, Style::Moto, MOTO_RESET)),
        )
        .route(
            LOCALSTACK_RESET,
            post(|s: State<Arc<App>>, r: Request| {
                serve(s, r, Scope::All, Style::LocalStack, LOCALSTACK_RESET)
            }),
        )
        .route(
            LOCALSTACK_KMS_RESET,
            post(|s: State<Arc<App>>, r: Request| {
                serve(s, r, Scope::Kms, Style::LocalStack, LOCALSTACK_KMS_RESET)
            }),
        )
        .route(
            LOCALSTACK_IAM_RESET,
            post(|s: State<Arc<App>>, r: Request| {
                serve(s, r, Scope::Iam, Style::LocalStack, LOCALSTACK_IAM_RESET)
            }),
        )
}

/// Clears `scope` of `app`'s state: KMS first, then IAM, each in one
/// atomic batch, under the cluster write lock on a shared store. Runs on
/// the blocking pool; one at a time per process.
pub async fn reset(app: &Arc<App>, scope: Scope) -> Result<Report, ResetError> {
    let Ok(_running) = tokio::time::timeout(RESET_WAIT, RUNNING.lock()).await else {
        return Err(ResetError::Cluster(
            ferrokms_store::StoreError::Unavailable(format!(
                "another reset did not finish within {}s",
                RESET_WAIT.as_secs()
            )),
        ));
    };
    let app = app.clone();
    tokio::task::spawn_blocking(move || {
        let work = || -> Result<Report, ResetError> {
            let mut report = Report::default();
            if scope != Scope::Iam {
                report.kms = Some(app.kms.reset_all()?);
            }
            if scope != Scope::Kms {
                report.iam = Some(app.directory.reset_identities()?);
            }
            if scope == Scope::All {
                report.analyzers = Some(app.analyzers.reset_all()?);
            }
            Ok(report)
        };
        match &app.cluster {
            Some(c) => c.write(work)?,
            None => work(),
        }
    })
    .await
    .map_err(|_| ResetError::Task)?
}

async fn serve(
    State(app): State<Arc<App>>,
    req: Request,
    scope: Scope,
    style: Style,
    path: &'static str,
) -> Response {
    let request_id = ferrokms_textfast::uuid_string(ids::unique_id_u128());
    let started = std::time::Instant::now();
    let result = reset(&app, scope).await;
    let source_ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let user_agent = req
        .headers()
        .get(hdr::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let params = serde_json::json!({ "path": path, "scope": scope.as_str() }).to_string();
    let (elements, error_text) = match &result {
        Ok(r) => (report_json(r).to_string(), None),
        Err(e) => (String::new(), Some(e.to_string())),
    };
    if app.audit.enabled() {
        app.audit.record_event(
            audit::EventInput {
                service: if scope == Scope::Iam { "iam" } else { "kms" },
                op: AUDIT_EVENT,
                region: "",
                source_ip,
                user_agent,
                identity: None,
                request_parameters: params.as_bytes(),
                response_elements: elements.as_bytes(),
                error: error_text
                    .as_deref()
                    .map(|m| ("ServiceUnavailableException", Some(m))),
                request_id: &request_id,
                event_id: None,
                decisions: &[],
                now_ms: now_ms(),
            },
            None,
        );
    }
    let mut resp = match result {
        Ok(r) => {
            tracing::warn!(
                path,
                scope = scope.as_str(),
                report = %report_json(&r),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "--dev: state reset"
            );
            match style {
                Style::Moto => {
                    let mut resp = (StatusCode::OK, "{\"status\": \"ok\"}").into_response();
                    resp.headers_mut().insert(
                        hdr::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                    resp
                }
                Style::LocalStack => StatusCode::OK.into_response(),
            }
        }
        Err(e) => {
            tracing::warn!(path, error = %e, "--dev: state reset failed");
            let body = serde_json::json!({ "status": "error", "message": e.to_string() });
            let mut resp = (StatusCode::SERVICE_UNAVAILABLE, body.to_string()).into_response();
            resp.headers_mut().insert(
                hdr::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp
        }
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert(hdr::X_AMZN_REQUESTID, v);
    }
    resp
}

fn report_json(r: &Report) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    if let Some(k) = r.kms {
        out.insert(
            "kms".into(),
            serde_json::json!({ "keys": k.keys, "aliases": k.aliases, "grants": k.grants }),
        );
    }
    if let Some(i) = r.iam {
        out.insert(
            "iam".into(),
            serde_json::json!({
                "users": i.users, "roles": i.roles, "groups": i.groups,
                "policies": i.policies, "accessKeys": i.access_keys,
            }),
        );
    }
    serde_json::Value::Object(out)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
