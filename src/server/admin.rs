//! The `RuleAdmin` service: status, reload, and what the active rule set holds.

use std::sync::Arc;
use std::time::Duration;

use rebound_engine::UnmatchedEntry;
use tonic::{Request, Response, Status};

use super::convert;
use super::state::{ReloadResult, RuleState};
use crate::pb;
use crate::pb::rule_admin_server::RuleAdmin;

pub struct AdminService {
    state: Arc<RuleState>,
    /// How long a Reload call waits for the reload before answering with the attempt as failed.
    reload_timeout: Duration,
}

impl AdminService {
    pub fn new(state: Arc<RuleState>, reload_timeout: Duration) -> Self {
        AdminService { state, reload_timeout }
    }

    fn status(&self) -> pb::RuleSetStatus {
        status(&self.state)
    }
}

/// The state as the wire reports it.
pub fn status(state: &RuleState) -> pb::RuleSetStatus {
    let rules = state.current();
    let (loaded_at, attempt) = state.record();
    pb::RuleSetStatus {
        active: Some(convert::version(&rules)),
        loaded_at_unix_ms: loaded_at,
        rules: u32::try_from(rules.rules().len()).unwrap_or(u32::MAX),
        categories: u32::try_from(rules.categories().len()).unwrap_or(u32::MAX),
        source: state.origin().describe(),
        last_attempt: Some(pb::ReloadAttempt {
            at_unix_ms: attempt.at_unix_ms,
            success: attempt.success,
            trigger: attempt.trigger,
            error: attempt.error,
        }),
    }
}

#[tonic::async_trait]
impl RuleAdmin for AdminService {
    async fn get_status(&self, _: Request<pb::GetStatusRequest>) -> Result<Response<pb::RuleSetStatus>, Status> {
        Ok(Response::new(self.status()))
    }

    async fn reload(&self, _: Request<pb::ReloadRequest>) -> Result<Response<pb::ReloadResponse>, Status> {
        let result = self.state.reload("admin", self.reload_timeout).await;
        Ok(Response::new(pb::ReloadResponse {
            changed: result == ReloadResult::Changed,
            status: Some(self.status()),
        }))
    }

    async fn list_categories(
        &self,
        _: Request<pb::ListCategoriesRequest>,
    ) -> Result<Response<pb::ListCategoriesResponse>, Status> {
        let rules = self.state.current();
        let categories = rules
            .categories()
            .iter()
            .map(|c| pb::Category {
                id: c.id.clone(),
                name: c.name.clone(),
                summary: c.summary.clone(),
                remediation: c.remediation.clone(),
                bounce_type: convert::bounce_type(c.outcome.bounce_type).into(),
                suppress_recipient: c.outcome.suppress_recipient,
                retryable: c.outcome.retryable,
                responsible: convert::responsible(c.outcome.responsible).into(),
            })
            .collect();
        Ok(Response::new(pb::ListCategoriesResponse { categories }))
    }

    async fn list_rules(
        &self,
        request: Request<pb::ListRulesRequest>,
    ) -> Result<Response<pb::ListRulesResponse>, Status> {
        let wanted = request.into_inner().category;
        let rules = self.state.current();
        let list = rules
            .rules()
            .iter()
            .filter(|r| wanted.is_empty() || rules.category_of(r).id == wanted)
            .map(|r| pb::Rule {
                id: r.id.clone(),
                category: rules.category_of(r).id.clone(),
                location: r.location(),
                specificity: r.specificity.to_string(),
                priority: r.priority,
                definition: r.definition.clone().unwrap_or_default(),
                evidence: convert::evidence(r.evidence).into(),
                suppress_override: r.suppress_override,
            })
            .collect();
        Ok(Response::new(pb::ListRulesResponse { rules: list }))
    }

    async fn list_unmatched(
        &self,
        request: Request<pb::ListUnmatchedRequest>,
    ) -> Result<Response<pb::ListUnmatchedResponse>, Status> {
        let request = request.into_inner();
        let tally = self.state.unmatched();
        let limit = match request.limit {
            0 => DEFAULT_UNMATCHED_LIMIT,
            n => usize::try_from(n).unwrap_or(usize::MAX),
        }
        .min(tally.capacity());
        let evidence = match pb::Evidence::try_from(request.evidence) {
            Ok(pb::Evidence::Unspecified) => None,
            Ok(e) => Some(e),
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "evidence: {} is not an Evidence value",
                    request.evidence
                )));
            }
        };
        let keep = move |entry: &UnmatchedEntry| {
            evidence.is_none_or(|e| convert::evidence(entry.evidence) == e)
                && (request.provider.is_empty() || entry.provider == request.provider)
                && (request.category.is_empty() || entry.category == request.category)
        };
        // Listing copies up to `limit` templates from every shard: off the async workers.
        let listed = Arc::clone(tally);
        let templates = tokio::task::spawn_blocking(move || listed.top(limit, keep))
            .await
            .map_err(|e| Status::internal(format!("listing the unmatched templates failed: {e}")))?;
        let mut bytes = 0;
        let templates = templates
            .into_iter()
            .map(unmatched_to_pb)
            .take_while(|t| {
                // Each listed template costs its length plus a tag and a length prefix.
                bytes += prost::Message::encoded_len(t) + 8;
                bytes <= MAX_UNMATCHED_LIST_BYTES
            })
            .collect();
        Ok(Response::new(pb::ListUnmatchedResponse {
            templates,
            capacity: tally.capacity() as u64,
            tracked: tally.tracked() as u64,
        }))
    }

    async fn reset_unmatched(
        &self,
        _: Request<pb::ResetUnmatchedRequest>,
    ) -> Result<Response<pb::ResetUnmatchedResponse>, Status> {
        let tally = self.state.unmatched();
        let forgotten = tally.reset();
        Ok(Response::new(pb::ResetUnmatchedResponse {
            forgotten: forgotten as u64,
        }))
    }
}

/// Templates ListUnmatched returns when the request does not say.
const DEFAULT_UNMATCHED_LIMIT: usize = 50;

/// Most bytes of templates one ListUnmatched answer carries: gRPC clients refuse answers over
/// 4 MiB by default, and 10,000 templates with examples can hold 30 MB.
const MAX_UNMATCHED_LIST_BYTES: usize = (4 << 20) - (64 << 10);

fn unmatched_to_pb(entry: UnmatchedEntry) -> pb::UnmatchedTemplate {
    pb::UnmatchedTemplate {
        evidence: convert::evidence(entry.evidence).into(),
        template: entry.template,
        count: entry.count,
        error_bound: entry.error_bound,
        first_seen_unix_ms: entry.first_seen_unix_ms,
        last_seen_unix_ms: entry.last_seen_unix_ms,
        provider: entry.provider,
        category: entry.category,
        rule_id: entry.rule_id,
        example: entry.example.unwrap_or_default(),
    }
}
