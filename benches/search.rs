//! `make bench-search`: search by face over 100k and 1M stored faces
//! (synthetic unit-norm-ish embeddings like dlib's, one owner) in the
//! database `MONGODB_URI` names, through the same scan the API runs
//! (`vigil::search::scan_prints`): p50/p99 per search, this process's CPU
//! per search, and its resident memory. Beside it, the same scan over the
//! same documents already in memory, to tell the database's share from
//! vigil's, and a search over the newest tenth only (`from`).

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use futures_util::TryStreamExt;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, RawDocumentBuf};
use vigil::db::migrations::{MigrationSet, Migrator};
use vigil::db::paging::PageRequest;
use vigil::db::{Database, DatabaseSettings, StoredEmbedding};
use vigil::detections::{DetectionId, FacePrints, PrintScope, SeenFaceRecord};
use vigil::search::{scan_prints, Collector, ProbeEmbeddings, SearchOrder, SearchQuery};
use vigil::users::UserId;

#[path = "synthetic.rs"]
mod synthetic;
use synthetic::Rng;

const MODEL: &str = "bench-model";
/// Searches per size (fewer at 1M: each reads every stored face).
const RUNS: [(usize, usize); 2] = [(100_000, 20), (1_000_000, 5)];

/// The sizes to run: all, or those `VIGIL_BENCH_SEARCH_FACES` lists
/// (`100000`: the quick one).
fn runs() -> Vec<(usize, usize)> {
    let Ok(only) = std::env::var("VIGIL_BENCH_SEARCH_FACES") else {
        return RUNS.to_vec();
    };
    let wanted: Vec<usize> = only.split(',').filter_map(|n| n.trim().parse().ok()).collect();
    RUNS.into_iter()
        .filter(|(faces, _)| wanted.contains(faces))
        .collect()
}
const BATCH: usize = 10_000;

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// User plus system CPU time of this process.
fn cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

struct Timings {
    wall_ms: Vec<f64>,
    cpu_ms: Vec<f64>,
}

impl Timings {
    fn line(&mut self) -> String {
        self.wall_ms.sort_by(f64::total_cmp);
        self.cpu_ms.sort_by(f64::total_cmp);
        format!(
            "p50 {:>8.1} ms  p99 {:>8.1} ms  cpu p50 {:>7.1} ms",
            quantile(&self.wall_ms, 0.5),
            quantile(&self.wall_ms, 0.99),
            quantile(&self.cpu_ms, 0.5)
        )
    }
}

async fn timed<F, Fut>(probes: &[ProbeEmbeddings], mut search: F) -> Timings
where
    F: FnMut(ProbeEmbeddings) -> Fut,
    Fut: std::future::Future<Output = u64>,
{
    let mut timings = Timings {
        wall_ms: Vec::new(),
        cpu_ms: Vec::new(),
    };
    for probe in probes {
        let (started, cpu_before) = (Instant::now(), cpu());
        std::hint::black_box(search(probe.clone()).await);
        timings.wall_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        timings.cpu_ms.push((cpu() - cpu_before).as_secs_f64() * 1000.0);
    }
    timings
}

fn query(from: Option<chrono::DateTime<Utc>>) -> SearchQuery {
    let mut window = PageRequest::parse(None, None, Some(50), None).expect("a valid page");
    window.from = from;
    SearchQuery::parse(window, Some(SearchOrder::Best), None, Some(0.6)).expect("a valid query")
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let uri = std::env::var("MONGODB_URI").expect("MONGODB_URI (make bench-search starts a database)");
    let name = format!("vigil_bench_search_{}", std::process::id());
    let db = Database::connect(&DatabaseSettings {
        uri,
        name: name.clone(),
        pool_size: 4,
        server_selection_timeout: Duration::from_secs(30),
    })
    .await
    .expect("the database");
    let set = MigrationSet::embedded().expect("the migrations");
    Migrator::new(&db, &set, "bench-search")
        .run()
        .await
        .expect("migrated");

    let prints = FacePrints::new(&db);
    let raw = db.collection::<SeenFaceRecord>("seen_faces");
    let owner = UserId(ObjectId::new());
    let scope = PrintScope::Owner(owner);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let runs = runs();
    // One face a second, ending now: `from` picks the newest tenth.
    let largest = runs.iter().map(|(faces, _)| *faces).max().unwrap_or(0);
    let start = Utc::now() - chrono::Duration::seconds(largest as i64);
    let mut stored = 0usize;

    println!("faces      search (stored in the database)                          in memory only        newest tenth          rss MiB");
    for (faces, searches) in runs {
        let inserting = Instant::now();
        while stored < faces {
            let batch: Vec<SeenFaceRecord> = (stored..(stored + BATCH).min(faces))
                .map(|i| SeenFaceRecord {
                    id: ObjectId::new(),
                    detection_id: DetectionId::new(),
                    face_index: 0,
                    user_id: Some(owner),
                    created_at: Utc.timestamp_opt(start.timestamp() + i as i64, 0).unwrap(),
                    model: MODEL.to_owned(),
                    embedding: StoredEmbedding(rng.embedding()),
                    subject_id: None,
                    visitor_id: None,
                })
                .collect();
            stored += batch.len();
            raw.insert_many(batch).await.expect("inserted");
        }
        eprintln!(
            "{faces} faces stored ({:.0} s of inserts)",
            inserting.elapsed().as_secs_f64()
        );
        let probes: Vec<ProbeEmbeddings> = (0..searches)
            .map(|_| ProbeEmbeddings::new(vec![rng.embedding()]).unwrap())
            .collect();

        // The peak from here on: the searches', not the inserts'.
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let full = query(None);
        let mut db_timings = timed(&probes, |probe| {
            let (prints, full) = (&prints, &full);
            async move {
                scan_prints(prints, scope, MODEL, &probe, full, 0.6)
                    .await
                    .expect("searched")
                    .scanned
            }
        })
        .await;
        let rss_search = status_kib("VmHWM:") / 1024;

        let recent_from = Utc
            .timestamp_opt(start.timestamp() + (faces - faces / 10) as i64, 0)
            .unwrap();
        let recent = query(Some(recent_from));
        let mut recent_timings = timed(&probes, |probe| {
            let (prints, recent) = (&prints, &recent);
            async move {
                scan_prints(prints, scope, MODEL, &probe, recent, 0.6)
                    .await
                    .expect("searched")
                    .scanned
            }
        })
        .await;

        // The same documents, read once into memory: what the scan costs
        // without the database.
        let documents: Vec<RawDocumentBuf> = raw
            .clone_with_type::<RawDocumentBuf>()
            .find(doc! { "user_id": owner.0 })
            .projection(
                doc! { "_id": 1, "detection_id": 1, "face_index": 1, "created_at": 1, "embedding": 1 },
            )
            .await
            .expect("read")
            .try_collect()
            .await
            .expect("read");
        assert_eq!(documents.len(), faces);
        let mut memory_timings = timed(&probes, |probe| {
            let documents = &documents;
            async move {
                let mut collector = Collector::new(SearchOrder::Best, 50, None, 0.6);
                for raw in documents {
                    collector.offer_raw(raw, &probe).expect("a stored face");
                }
                collector.scanned
            }
        })
        .await;
        drop(documents);

        println!(
            "{faces:<10} {}   {}   {}   {rss_search}",
            db_timings.line(),
            memory_timings.line().split("  cpu").next().unwrap(),
            recent_timings.line().split("  cpu").next().unwrap(),
        );
    }
    db.handle().drop().await.expect("dropped");
}
