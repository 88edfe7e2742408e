//! `rebound health`: asks a server's `grpc.health.v1` whether it is SERVING (for container
//! health checks and scripts).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// How to reach the server.
#[derive(Debug, Clone)]
pub struct HealthTarget {
    /// `host:port` or a URL (`http://...`, `https://...`).
    pub addr: String,
    /// The service to ask about; empty for the server as a whole.
    pub service: String,
    /// CA certificate (PEM) to trust; turns TLS on.
    pub ca: Option<PathBuf>,
    /// Client certificate and key (PEM) for mTLS.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// The name to verify in the server certificate (the host of `addr` when absent).
    pub domain: Option<String>,
    pub timeout: Duration,
}

/// The serving status the server reports.
pub async fn check(target: &HealthTarget) -> anyhow::Result<ServingStatus> {
    let tls = target.ca.is_some();
    let url = if target.addr.contains("://") {
        target.addr.clone()
    } else {
        format!("{}://{}", if tls { "https" } else { "http" }, target.addr)
    };
    let mut endpoint = Endpoint::from_shared(url.clone())
        .with_context(|| format!("bad address {url}"))?
        .connect_timeout(target.timeout)
        .timeout(target.timeout);
    if let Some(ca) = &target.ca {
        let read = |p: &PathBuf| std::fs::read(p).with_context(|| format!("cannot read {}", p.display()));
        let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca)?));
        if let Some((cert, key)) = &target.client_cert {
            config = config.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        if let Some(domain) = &target.domain {
            config = config.domain_name(domain.clone());
        }
        endpoint = endpoint.tls_config(config)?;
    }
    let channel: Channel = endpoint
        .connect()
        .await
        .with_context(|| format!("cannot connect to {url}"))?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: target.service.clone(),
        })
        .await
        .with_context(|| format!("health check of {url} failed"))?;
    Ok(response.into_inner().status())
}
