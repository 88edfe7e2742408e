//! `rebound serve`: the gRPC server over the engine. Listeners, TLS, health, reflection,
//! metrics and graceful shutdown live here; every decision stays in the engine.

mod admin;
mod classifier;
mod convert;
mod listener;
mod messages;
pub mod metrics;
pub mod reload;
pub mod state;
mod stream;
pub mod unmatched;
pub mod wire;

/// The Classifier server generated a second time, by `build.rs`: the same service and types as
/// `pb::classifier_server`, except that batches come as [`wire::BatchRequest`] and are answered
/// with [`wire::EncodedBatch`].
mod classifier_api {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    include!(concat!(env!("OUT_DIR"), "/classifier_server/rebound.v1.rs"));
}

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use listener::HTTP2_PREFACE_BYTES;
use tokio_util::sync::CancellationToken;
use tonic::codec::CompressionEncoding;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic_health::ServingStatus;

pub use classifier::Limits;
pub use reload::ReloadOptions;
pub use state::{RuleOrigin, RuleState};
pub use unmatched::UnmatchedOptions;

use crate::pb;
use crate::pb::rule_admin_server::RuleAdminServer;
use classifier_api::classifier_server::ClassifierServer;

/// PEM files for TLS; with `client_ca`, clients must present a certificate it signed (mTLS).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

/// Everything `rebound serve` can be told.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The Classifier (and health, reflection) listener.
    pub listen: SocketAddr,
    /// The RuleAdmin listener; keep it on loopback unless it is protected otherwise.
    pub admin_listen: SocketAddr,
    pub tls: Option<TlsFiles>,
    pub limits: Limits,
    /// Largest request or response message, in bytes; a larger request fails with OUT_OF_RANGE.
    pub max_message_bytes: usize,
    pub http2_keepalive_interval: Duration,
    pub http2_keepalive_timeout: Duration,
    /// Connections are closed (GOAWAY) after this long, so load balancers can rebalance.
    pub max_connection_age: Duration,
    pub max_connection_age_grace: Duration,
    /// A connection whose handshake (HTTP/2 preface; with TLS, the TLS handshake) has not
    /// arrived within this long is closed. The metrics listener's requests too.
    pub handshake_timeout: Duration,
    /// After SIGTERM, health reports NOT_SERVING for this long while requests are still served,
    /// so load balancers stop sending before the listener closes.
    pub shutdown_delay: Duration,
    /// Then open streams end (UNAVAILABLE) and in-flight calls get this long to finish.
    pub drain_timeout: Duration,
    /// How a rule directory is followed (ignored for embedded rules).
    pub reload: ReloadOptions,
    /// Answer every request with one fixed response instead of classifying (benchmarks only:
    /// it measures the transport alone).
    pub baseline: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 50051)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 50052)),
            tls: None,
            limits: Limits::default(),
            max_message_bytes: 16 * 1024 * 1024,
            http2_keepalive_interval: Duration::from_secs(30),
            http2_keepalive_timeout: Duration::from_secs(10),
            max_connection_age: Duration::from_secs(30 * 60),
            max_connection_age_grace: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(5),
            shutdown_delay: Duration::ZERO,
            drain_timeout: Duration::from_secs(10),
            reload: ReloadOptions::default(),
            baseline: false,
        }
    }
}

/// A server bound to its ports, not yet serving.
pub struct BoundServer {
    config: ServerConfig,
    state: Arc<RuleState>,
    incoming: TcpIncoming,
    admin_incoming: TcpIncoming,
    /// Where the Classifier listens (the real port when 0 was asked for).
    pub addr: SocketAddr,
    /// Where RuleAdmin listens.
    pub admin_addr: SocketAddr,
}

impl BoundServer {
    /// Binds both listeners.
    pub fn bind(config: ServerConfig, state: Arc<RuleState>) -> anyhow::Result<BoundServer> {
        let incoming = listener::bind(config.listen).with_context(|| format!("cannot listen on {}", config.listen))?;
        let admin_incoming =
            listener::bind(config.admin_listen).with_context(|| format!("cannot listen on {}", config.admin_listen))?;
        let addr = incoming.local_addr()?;
        let admin_addr = admin_incoming.local_addr()?;
        Ok(BoundServer {
            incoming,
            admin_incoming,
            addr,
            admin_addr,
            config,
            state,
        })
    }

    /// Serves until `shutdown` resolves, then drains as configured.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let BoundServer {
            config,
            state,
            incoming,
            admin_incoming,
            addr,
            admin_addr,
        } = self;
        let draining = CancellationToken::new();
        let stopped = CancellationToken::new();

        let (health, health_service) = tonic_health::server::health_reporter();
        // Each port lists only what it serves: rebound.proto declares both APIs.
        let reflection = |api: &str| {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .with_service_name(api)
                .with_service_name(HEALTH)
        };
        let (classifier_api, admin_api) = ("rebound.v1.Classifier", "rebound.v1.RuleAdmin");
        let reflection_v1 = reflection(classifier_api).with_service_name(REFLECTION_V1).build_v1()?;
        let reflection_v1alpha = reflection(classifier_api)
            .with_service_name(REFLECTION_V1ALPHA)
            .build_v1alpha()?;

        let classifier = classifier::ClassifierEdge::new(
            ClassifierServer::new(classifier::ClassifierService::new(
                Arc::clone(&state),
                config.limits,
                config.max_message_bytes,
                draining.clone(),
                config.baseline,
            ))
            .max_decoding_message_size(config.max_message_bytes)
            .max_encoding_message_size(config.max_message_bytes)
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip),
        );
        let admin = RuleAdminServer::new(admin::AdminService::new(Arc::clone(&state), config.reload.timeout));

        let mut builder = Server::builder()
            .http2_keepalive_interval(Some(config.http2_keepalive_interval))
            .http2_keepalive_timeout(Some(config.http2_keepalive_timeout))
            .max_connection_age(config.max_connection_age)
            .max_connection_age_grace(config.max_connection_age_grace);
        let mut admin_builder = Server::builder();
        if let Some(tls) = &config.tls {
            let tls = tls_config(tls)?.timeout(config.handshake_timeout);
            builder = builder.tls_config(tls.clone())?;
            admin_builder = admin_builder.tls_config(tls)?;
        }

        let stop = stopped.clone();
        let main = builder
            .add_service(health_service.clone())
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(classifier)
            .serve_with_incoming_shutdown(
                listener::Incoming::new(incoming, "grpc", config.handshake_timeout, HTTP2_PREFACE_BYTES),
                async move { stop.cancelled().await },
            );
        let stop = stopped.clone();
        let admin_server = admin_builder
            .add_service(health_service)
            .add_service(reflection(admin_api).with_service_name(REFLECTION_V1).build_v1()?)
            .add_service(
                reflection(admin_api)
                    .with_service_name(REFLECTION_V1ALPHA)
                    .build_v1alpha()?,
            )
            .add_service(admin)
            .serve_with_incoming_shutdown(
                listener::Incoming::new(admin_incoming, "admin", config.handshake_timeout, HTTP2_PREFACE_BYTES),
                async move { stop.cancelled().await },
            );

        health
            .set_serving::<ClassifierServer<classifier::ClassifierService>>()
            .await;
        health.set_serving::<RuleAdminServer<admin::AdminService>>().await;
        metrics::rule_set(&state.current());
        let (loaded_at, _) = state.record();
        metrics::reload(state::ReloadResult::Changed, loaded_at);
        let reloader = reload::spawn(Arc::clone(&state), config.reload, stopped.clone());
        let rules = state.current();
        tracing::info!(%addr, %admin_addr, rules = rules.rules().len(), digest = rules.digest(), source = state.origin().describe(), "serving");
        drop(rules);

        let main = tokio::spawn(main);
        let admin_server = tokio::spawn(admin_server);
        shutdown.await;

        tracing::info!(delay = ?config.shutdown_delay, drain = ?config.drain_timeout, "shutting down: reporting NOT_SERVING");
        health.set_service_status("", ServingStatus::NotServing).await;
        health
            .set_not_serving::<ClassifierServer<classifier::ClassifierService>>()
            .await;
        health.set_not_serving::<RuleAdminServer<admin::AdminService>>().await;
        tokio::time::sleep(config.shutdown_delay).await;
        draining.cancel();
        stopped.cancel();
        if let Some(reloader) = reloader {
            let _ = reloader.await;
        }
        let drained = tokio::time::timeout(config.drain_timeout, async {
            let _ = main.await;
            let _ = admin_server.await;
        })
        .await;
        match drained {
            Ok(()) => tracing::info!("drained; stopped"),
            Err(_) => {
                tracing::warn!(timeout = ?config.drain_timeout, "drain deadline reached; closing remaining connections")
            }
        }
        Ok(())
    }
}

const HEALTH: &str = "grpc.health.v1.Health";
const REFLECTION_V1: &str = "grpc.reflection.v1.ServerReflection";
const REFLECTION_V1ALPHA: &str = "grpc.reflection.v1alpha.ServerReflection";

fn tls_config(files: &TlsFiles) -> anyhow::Result<ServerTlsConfig> {
    let read = |p: &PathBuf| std::fs::read(p).with_context(|| format!("cannot read {}", p.display()));
    let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(read(&files.cert)?, read(&files.key)?));
    if let Some(ca) = &files.client_ca {
        tls = tls
            .client_ca_root(Certificate::from_pem(read(ca)?))
            .client_auth_optional(false);
    }
    Ok(tls)
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn termination_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received"),
        _ = term => tracing::info!("SIGTERM received"),
    }
}
