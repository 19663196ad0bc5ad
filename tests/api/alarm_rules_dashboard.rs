//! The dashboard's Alarm rules view in a real headless Chromium against the
//! real server and models: a rule saved there decides the next upload's
//! alarm, a refusal is shown at the rule it names and stores nothing, and
//! only admins edit the cameras' rules. Screenshots land in target/screenshots/.

use serde_json::{json, Value};

use crate::browser::Browser;
use crate::dashboard::{log_in, open, SLOW};
use crate::helpers::{spawn_app_with, AppOptions, TestApp, TestUser};
use crate::people::identities;

/// The rule at `index` of the editor for `set` (`rules` or `camera_rules`).
fn rule(set: &str, index: usize) -> String {
    format!(".rule-editor[data-set='{set}'] .rule[data-index='{index}']")
}

async fn stored(app: &TestApp, user: &TestUser) -> Value {
    app.fetch_as::<Value>("/api/v1/alarm-rules", &user.access_token)
        .await
}

/// Chooses `value` in the select `css`, as a person's pick does.
async fn choose(page: &Browser, css: &str, value: &str) {
    page.js(
        "const s = document.querySelector(arguments[0]); s.value = arguments[1]; \
         s.dispatchEvent(new Event('change', {bubbles: true}))",
        vec![json!(css), json!(value)],
    )
    .await;
}

/// Opens the view and waits for its rules to be loaded.
async fn open_rules(page: &Browser) {
    open(page, "#/rules").await;
    page.wait_for(
        "the rules to load",
        SLOW,
        "return !document.querySelector('#rules-save').disabled \
         && !!document.querySelector(\".rule-editor[data-set='rules']\")",
    )
    .await;
}

/// Adds a rule to the editor for `set` and waits for its row.
async fn add_rule(page: &Browser, set: &str, index: usize) {
    page.click(&format!(".rule-editor[data-set='{set}'] button.rule-add"))
        .await;
    page.wait_for(
        &format!("rule {index} of {set}"),
        SLOW,
        &format!("return !!document.querySelector(\"{}\")", rule(set, index)),
    )
    .await;
}

/// Saves and waits for the view to say so.
async fn save(page: &Browser) {
    page.js("document.querySelector('#rules-saved').textContent = ''", vec![])
        .await;
    page.click("#rules-save").await;
    page.wait_for(
        "the rules to be saved",
        SLOW,
        "return document.querySelector('#rules-saved').textContent.startsWith('Saved') \
         && document.querySelector('#rules-error').hidden",
    )
    .await;
}

#[tokio::test]
async fn a_person_sets_alarm_rules_in_the_dashboard_and_they_decide_the_alarms() {
    let people = identities();
    let app = spawn_app_with(AppOptions::default().flag("--rate-limit-per-second", 100)).await;
    let admin = app.create_user().await;
    let user = app.create_user().await;
    let ann = app.create_subject(&user, "Ann").await;
    for photo in &people[0].1[..3] {
        app.enrol_photo(&user, &ann.id, photo).await;
    }

    // A plain user has their own rules only.
    let page = Browser::start("rules").await;
    page.goto(&app.url("/")).await;
    log_in(&page, &user.user_name, &user.password).await;
    open_rules(&page).await;
    let cameras = page
        .js(
            "return document.querySelector(\".rule-editor[data-set='camera_rules']\") === null",
            vec![],
        )
        .await;
    assert_eq!(cameras, json!(true), "a plain user sees no cameras editor");
    assert_eq!(
        page.attr("nav a[data-route='rules']", "aria-current")
            .await
            .as_deref(),
        Some("page")
    );

    // Everyone but Ann raises an alarm.
    add_rule(&page, "rules", 0).await;
    let first = rule("rules", 0);
    choose(&page, &format!("{first} select.rule-when"), "household").await;
    page.wait_for(
        "the list of people",
        SLOW,
        &format!("return !document.querySelector(\"{first} .rule-subjects\").hidden"),
    )
    .await;
    let ann_box = format!("{first} input.rule-subject[value='{}']", ann.id);
    page.click(&ann_box).await;
    save(&page).await;
    assert_eq!(
        stored(&app, &user).await,
        json!({"rules": [{"when": "household", "subjects": [ann.id]}]})
    );
    // Shown again from what the server stored.
    let shown = page
        .js(
            "return [document.querySelector(arguments[0]).value, document.querySelector(arguments[1]).checked]",
            vec![json!(format!("{first} select.rule-when")), json!(ann_box)],
        )
        .await;
    assert_eq!(shown, json!(["household", true]));
    page.screenshot("01-household").await;

    // The rule decides the next upload's alarm; the detection is stored either way.
    let seen = app.detect(&user, std::fs::read(&people[0].1[6]).unwrap()).await;
    assert!(seen.face_count > 0, "{seen:?}");
    assert!(seen.alarm_id.is_none(), "Ann raised an alarm: {seen:?}");
    let stranger = app.detect(&user, std::fs::read(&people[3].1[6]).unwrap()).await;
    assert!(
        stranger.alarm_id.is_some(),
        "a stranger raised none: {stranger:?}"
    );

    // A second rule for every source is refused at that rule; nothing is stored.
    add_rule(&page, "rules", 1).await;
    let second = rule("rules", 1);
    choose(&page, &format!("{second} select.rule-when"), "any").await;
    page.click("#rules-save").await;
    page.wait_for(
        "the refusal",
        SLOW,
        "return !document.querySelector('#rules-error').hidden",
    )
    .await;
    page.wait_for(
        "the refusal at rule 2",
        SLOW,
        &format!(
            "const r = document.querySelector(\"{second}\"); \
             return r.classList.contains('invalid') && !r.querySelector('.rule-error').hidden \
             && r.querySelector('input.rule-source').getAttribute('aria-invalid') === 'true'"
        ),
    )
    .await;
    let alert = page.text("#rules-error").await;
    assert!(
        alert.contains("rule 2") && alert.contains("every source"),
        "{alert}"
    );
    assert!(page
        .text(&format!("{second} .rule-error"))
        .await
        .contains("every source"));
    let untouched = page
        .js(
            "return document.querySelector(arguments[0]).hidden",
            vec![json!(format!("{first} .rule-error"))],
        )
        .await;
    assert_eq!(untouched, json!(true), "the first rule is not marked");
    assert_eq!(
        stored(&app, &user).await,
        json!({"rules": [{"when": "household", "subjects": [ann.id]}]})
    );
    page.screenshot("02-refused").await;
    page.close().await;

    // An admin edits the cameras' rules too.
    let page = Browser::start("rules-admin").await;
    page.goto(&app.url("/")).await;
    log_in(&page, &admin.user_name, &admin.password).await;
    open_rules(&page).await;
    page.wait_for(
        "the cameras editor",
        SLOW,
        "return !!document.querySelector(\".rule-editor[data-set='camera_rules']\")",
    )
    .await;
    add_rule(&page, "camera_rules", 0).await;
    let porch = rule("camera_rules", 0);
    page.fill(&format!("{porch} input.rule-source"), "porch").await;
    choose(&page, &format!("{porch} select.rule-when"), "unknown").await;
    save(&page).await;
    let rules = stored(&app, &admin).await;
    assert_eq!(
        rules["camera_rules"],
        json!([{"source": "porch", "when": "unknown"}])
    );
    assert_eq!(rules["rules"], json!([]));
    page.screenshot("03-cameras").await;
    page.close().await;
}
