//! Alarm rules: which faces raise an alarm, per source (docs/alarm-rules.md).
//! Users read and replace their own; admins the cameras' too.

use actix_web::{get, put, web, HttpResponse};

use super::error::ApiError;
use super::extract::JsonBody;
use crate::alarm_rules::service::RuleEditor;
use crate::alarm_rules::{AlarmRules, AlarmRulesView};
use crate::auth::Principal;
use vigil_wire::ErrorBody;

fn editor(principal: &Principal) -> RuleEditor {
    RuleEditor {
        user: principal.user_id,
        admin: principal.is_admin(),
    }
}

/// The caller's alarm rules, in order; for admins, the cameras' rules too.
/// No rules: every frame with faces raises its alarm.
#[utoipa::path(
    tag = "alarm rules",
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The rules", body = AlarmRulesView),
    )
)]
#[get("/api/v1/alarm-rules")]
pub async fn get(principal: Principal, rules: web::Data<AlarmRules>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(rules.get(editor(&principal)).await?))
}

/// Replaces the caller's rules (an empty list removes them) and, when
/// `camera_rules` is given, the cameras' (admins only), in one step. Every
/// instance applies them from the next frame on; detections are stored
/// whatever the rules say, only alarms follow them.
#[utoipa::path(
    tag = "alarm rules",
    security(("bearer" = []), ("api_key" = [])),
    request_body = AlarmRulesView,
    responses(
        (status = 200, description = "The rules now stored", body = AlarmRulesView),
        (status = 400, description = "`invalid_json`", body = ErrorBody),
        (status = 403, description = "`forbidden`: `camera_rules` from a user who is not an admin", body = ErrorBody),
        (status = 404, description = "`not_found`: a listed subject is not the caller's (camera rules: no subject at all)", body = ErrorBody),
        (status = 409, description = "`rule_exists`: two rules for one source (or two without)", body = ErrorBody),
        (status = 422, description = "`validation_failed`: an unknown field, a source with control characters, a time that is not HH:MM; more than 50 rules or 100 subjects in one", body = ErrorBody),
    )
)]
#[put("/api/v1/alarm-rules")]
pub async fn replace(
    principal: Principal,
    rules: web::Data<AlarmRules>,
    body: JsonBody<AlarmRulesView>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(rules.replace(editor(&principal), body.0).await?))
}
