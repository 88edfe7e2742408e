//! The `RuleAdmin` service: status, reload, and what the active rule set holds.

use std::sync::Arc;
use std::time::Duration;

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
}
