//! The dashboard with the job queue, in a real headless Chromium against the
//! real server, models and ffmpeg: a video chosen in the Upload view is sent,
//! and its job's progress is followed live to the end; the Jobs list shows
//! it, takes a job submitted elsewhere in as it comes, cancels it, filters
//! by state and pages; and with the WebSocket down the Upload view follows a
//! job by polling. Screenshots land in target/screenshots/.

use serde_json::{json, Value};
use vigil_wire::jobs::{JobState, JobView};
use vigil_wire::paging::PageOf;

use crate::browser::Browser;
use crate::dashboard::{log_in, open, SLOW};
use crate::helpers::{face_clip, spawn_app_with, AppOptions};

/// Frames the server samples from `seconds` of video at `fps`.
fn frames(seconds: u32, fps: u32) -> u64 {
    u64::from(seconds * fps)
}

/// The Jobs list's row of a job.
fn row(id: &str) -> String {
    format!("tr[data-job-id=\"{id}\"]")
}

/// What the page writes for a job's result.
fn result_text(job: &JobView) -> String {
    let n = |count: u64, one: &str| format!("{count} {one}{}", if count == 1 { "" } else { "s" });
    format!(
        "{} · {} · {}",
        n(job.result.detections, "detection"),
        n(job.result.faces, "face"),
        n(job.result.alarms, "alarm")
    )
}

/// Waits for the Upload view's job panel to show job `id` (or any job but
/// `not`) ended; returns its id.
async fn upload_panel_ended(page: &Browser, what: &str, not: &str) -> String {
    let id = page
        .wait_for(
            what,
            SLOW,
            &format!(
                "const p = document.querySelector('#video-job'); \
                 return p && p.dataset.jobId !== '{not}' && ['done', 'failed', 'cancelled'].includes(p.dataset.state) && p.dataset.jobId"
            ),
        )
        .await;
    id.as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_person_follows_a_video_s_job_live_lists_cancels_and_polls_without_the_socket() {
    // The long video below would run past the default quota of 100 frames.
    let app = spawn_app_with(AppOptions::default().flag("--default-quota", 1000)).await;
    // The first account is the admin; the person at the browser is not.
    app.create_user().await;
    let user = app.create_user().await;
    let dir = tempfile::tempdir().unwrap();
    let (short_secs, short_fps) = (4, 2);
    let short = face_clip(dir.path(), "door.mp4", short_secs);
    let long = face_clip(dir.path(), "long.mp4", 30);
    let page = Browser::start("jobs").await;
    page.goto(&app.url("/")).await;
    log_in(&page, &user.user_name, &user.password).await;
    open(&page, "#/upload").await;
    assert_eq!(
        page.attr("#upload-file", "accept").await.as_deref(),
        Some("image/*,video/*")
    );

    // The page notes every state, progress and liveness the job panel shows:
    // polling from here could miss the short-lived ones.
    page.js(
        "window.seen = {states: [], done: [], live: []}; \
         new MutationObserver(() => { const p = document.querySelector('#video-job'); if (!p) return; \
           const bar = p.querySelector('#job-progress'); const s = window.seen; \
           for (const [list, v] of [[s.states, p.dataset.state], [s.done, bar.getAttribute('value')], [s.live, p.dataset.live]]) \
             if (v !== undefined && v !== null && list[list.length - 1] !== v) list.push(v); }) \
         .observe(document.querySelector('main'), {childList: true, subtree: true, attributes: true});",
        vec![],
    )
    .await;
    page.fill("#upload-fps", &short_fps.to_string()).await;
    page.find("#upload-file")
        .await
        .send_keys(short.to_str().unwrap())
        .await
        .unwrap();
    let first = upload_panel_ended(&page, "the video's job to end", "").await;
    let job = app.job(&user.access_token, &first).await;
    let total = frames(short_secs, short_fps);
    assert_eq!(job.state, JobState::Done, "{job:?}");
    assert_eq!((job.progress.done, job.progress.total), (total, Some(total)));
    assert_eq!(
        (job.source.as_str(), job.fps),
        ("door.mp4", Some(f64::from(short_fps)))
    );
    let bar = page
        .js(
            "const b = document.querySelector('#job-progress'); return [b.value, b.max]",
            vec![],
        )
        .await;
    assert_eq!(bar, json!([total, total]));
    assert_eq!(
        page.text("#job-progress-text").await,
        format!("{total} of {total} frames")
    );
    assert_eq!(page.text("#job-result").await, result_text(&job));
    assert!(page.text("#job-state").await.contains("Done"));
    assert!(!page.find("#job-cancel").await.is_displayed().await.unwrap());
    let seen = page.js("return window.seen", vec![]).await;
    let states: Vec<&str> = seen["states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(
        states.contains(&"running") && states.last() == Some(&"done"),
        "the states shown: {seen}"
    );
    assert!(
        seen["live"].as_array().unwrap().contains(&json!("true")),
        "followed on the socket: {seen}"
    );
    assert!(
        seen["done"].as_array().unwrap().len() >= 3,
        "progress shown on the way: {seen}"
    );
    page.js("document.activeElement?.blur()", vec![]).await;
    page.screenshot("01-video-done").await;

    // The Jobs list has it.
    page.click("nav a[href='#/jobs']").await;
    page.wait_for(
        "the video's job in the list",
        SLOW,
        &format!(
            "return document.querySelector('{} .job-state-cell')?.textContent === 'Done'",
            row(&first)
        ),
    )
    .await;
    let listed = page.text(&row(&first)).await;
    assert!(
        listed.contains("door.mp4") && listed.contains(&format!("{total} of {total} frames")),
        "{listed}"
    );
    assert_eq!(
        page.text(&format!("{} .job-outcome", row(&first))).await,
        result_text(&job)
    );
    page.wait_for(
        "the list's subscription",
        SLOW,
        "return document.querySelector('.jobs-view').dataset.live === 'true'",
    )
    .await;

    // A long video sent by another client comes into the list by itself,
    // runs, and is cancelled from it.
    let other = app.video_job(&user.access_token, &long, "10").await;
    page.wait_for(
        "the long video running in the list",
        SLOW,
        &format!(
            "const r = document.querySelector('{}'); return r?.dataset.state === 'running' \
             && Number(r.querySelector('progress').value) > 0 && r.querySelector('.job-counts').textContent.endsWith('of 300 frames')",
            row(&other.id)
        ),
    )
    .await;
    let rows = page
        .js(
            "return [...document.querySelectorAll('table.jobs tbody tr')].map(r => r.dataset.jobId)",
            vec![],
        )
        .await;
    assert_eq!(rows, json!([other.id, first]), "newest first");
    page.screenshot("02-running").await;
    page.click(&format!("{} button.job-cancel", row(&other.id))).await;
    page.wait_for(
        "the cancelled job",
        SLOW,
        &format!(
            "const r = document.querySelector('{}'); return r?.dataset.state === 'cancelled' \
             && r.querySelector('button.job-cancel').hidden",
            row(&other.id)
        ),
    )
    .await;
    let cancelled = app.job(&user.access_token, &other.id).await;
    assert_eq!(cancelled.state, JobState::Cancelled);
    assert!(cancelled.progress.done < 300, "{cancelled:?}");
    page.screenshot("03-cancelled").await;

    // The state filter, and a page at a time.
    page.js("document.querySelector('#j-state').value = 'cancelled'", vec![])
        .await;
    page.click("form.filters button[type=submit]").await;
    page.wait_for(
        "only the cancelled job",
        SLOW,
        &format!(
            "const r = [...document.querySelectorAll('table.jobs tbody tr')]; \
             return location.hash === '#/jobs?state=cancelled' && r.length === 1 && r[0].dataset.jobId === '{}'",
            other.id
        ),
    )
    .await;
    open(&page, "#/jobs?limit=1").await;
    page.wait_for(
        "the first page of one",
        SLOW,
        "return document.querySelectorAll('table.jobs tbody tr').length === 1 && !document.querySelector('#jobs-more').hidden",
    )
    .await;
    page.click("#jobs-more").await;
    let paged = page
        .wait_for(
            "the second page",
            SLOW,
            "const r = [...document.querySelectorAll('table.jobs tbody tr')]; \
             return r.length === 2 && document.querySelector('#jobs-more').hidden && r.map(r => r.dataset.jobId)",
        )
        .await;
    assert_eq!(paged, json!([other.id, first]));

    // The Upload view shows this tab's last video again. Then the socket
    // goes down (and stays down: every new one fails), and a video's job is
    // followed by polling.
    open(&page, "#/upload").await;
    page.wait_for(
        "the last video's job again",
        SLOW,
        &format!("return document.querySelector('#video-job')?.dataset.jobId === '{first}'"),
    )
    .await;
    page.js(
        "window.WebSocket = class { constructor() { setTimeout(() => this.onclose?.({code: 1006}), 10); } send() {} close() {} }; \
         window.dispatchEvent(new Event('offline'));",
        vec![],
    )
    .await;
    page.wait_for(
        "the indicator to say Offline",
        SLOW,
        "return document.querySelector('#conn').dataset.state === 'offline'",
    )
    .await;
    page.fill("#upload-fps", "1").await;
    let polled_clip = face_clip(dir.path(), "yard.mp4", 2);
    page.find("#upload-file")
        .await
        .send_keys(polled_clip.to_str().unwrap())
        .await
        .unwrap();
    let polled = upload_panel_ended(&page, "the polled job to end", &first).await;
    let job = app.job(&user.access_token, &polled).await;
    assert_eq!(job.state, JobState::Done, "{job:?}");
    assert_eq!(page.text("#job-progress-text").await, "2 of 2 frames");
    assert_eq!(page.text("#job-result").await, result_text(&job));
    assert_eq!(
        page.attr("#video-job", "data-live").await.as_deref(),
        Some("false")
    );
    // Offline between its retries, Connecting… during each (its token
    // fetch can take a while on a loaded machine): never Live.
    assert_ne!(page.attr("#conn", "data-state").await.as_deref(), Some("live"));
    page.js("document.activeElement?.blur()", vec![]).await;
    page.screenshot("04-polled").await;
    page.close().await;
}

/// Sets the browser's upload speed in bytes per second (-1: unthrottled).
async fn upload_speed(page: &Browser, bytes_per_sec: i64) {
    // Conditions apply once the Network domain is on.
    page.cdp("Network.enable", json!({})).await;
    page.cdp(
        "Network.emulateNetworkConditions",
        json!({"offline": false, "latency": 0, "downloadThroughput": -1, "uploadThroughput": bytes_per_sec}),
    )
    .await;
}

#[tokio::test]
async fn a_bad_frame_rate_is_refused_and_a_slow_upload_shows_its_progress_and_stops() {
    let app = spawn_app_with(AppOptions::default()).await;
    app.create_user().await;
    let user = app.create_user().await;
    let dir = tempfile::tempdir().unwrap();
    let clip = face_clip(dir.path(), "door.mp4", 1);
    let page = Browser::start("jobs-fps").await;
    page.goto(&app.url("/")).await;
    log_in(&page, &user.user_name, &user.password).await;
    open(&page, "#/upload").await;
    page.fill("#upload-fps", "0").await;
    page.find("#upload-file")
        .await
        .send_keys(clip.to_str().unwrap())
        .await
        .unwrap();
    page.wait_for(
        "the frame-rate error",
        SLOW,
        "return !document.querySelector('#upload-error').hidden",
    )
    .await;
    let message = page.text("#upload-error").await;
    assert!(message.contains("frames per second must be above 0"), "{message}");
    assert_eq!(
        page.attr("#upload-fps", "aria-invalid").await.as_deref(),
        Some("true")
    );
    let focused: Value = page.js("return document.activeElement.id", vec![]).await;
    assert_eq!(focused, json!("upload-fps"));
    let no_jobs = || async {
        let jobs: PageOf<JobView> = app.fetch_as("/api/v1/jobs", &user.access_token).await;
        jobs.items.is_empty()
    };
    assert!(no_jobs().await, "nothing was sent");

    // On a slow line the bytes sent are shown as they go; the upload can be stopped.
    page.fill("#upload-fps", "0.5").await;
    upload_speed(&page, 2_500).await;
    page.find("#upload-file")
        .await
        .send_keys(clip.to_str().unwrap())
        .await
        .unwrap();
    page.wait_for(
        "part of the video sent",
        SLOW,
        "const b = document.querySelector('#upload-bar'); return b && b.value > 0 && b.value < b.max \
         && /^[0-9.]+ kB of [0-9.]+ kB sent \\([0-9]+%\\)$/.test(document.querySelector('#upload-bytes').textContent)",
    )
    .await;
    page.screenshot("01-sending").await;
    page.click("#upload-stop").await;
    page.wait_for(
        "the stopped upload",
        SLOW,
        "return document.querySelector('#upload-error').dataset.code === 'aborted' && !document.querySelector('#upload-sending')",
    )
    .await;
    assert!(page
        .text("#upload-error")
        .await
        .contains("The upload was stopped"));
    upload_speed(&page, -1).await;
    assert!(no_jobs().await, "a stopped upload makes no job");

    // At full speed the same file goes.
    page.find("#upload-file")
        .await
        .send_keys(clip.to_str().unwrap())
        .await
        .unwrap();
    let id = upload_panel_ended(&page, "the job to end", "").await;
    let job = app
        .wait_for_job(&user.access_token, &id, SLOW, |j| j.state.is_final())
        .await;
    assert_eq!(job.fps, Some(0.5));
    assert!(page
        .find("#upload-error")
        .await
        .attr("hidden")
        .await
        .unwrap()
        .is_some());
    page.close().await;
}
