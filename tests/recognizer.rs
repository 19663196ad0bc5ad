//! Face recognition end to end through the `vigil` binary: the real models
//! (`make models`), real photos (../shared/data/identities, in
//! VIGIL_TEST_IDENTITIES_DIR; the Makefile sets it).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn models_dir() -> PathBuf {
    std::env::var_os("VIGIL_MODELS_DIR")
        .map(PathBuf::from)
        // The tests are vigil-bin's; the models are the repository's.
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models"))
}

fn vigil() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
    for (key, _) in std::env::vars() {
        if key.starts_with("VIGIL_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("VIGIL_MODELS_DIR", models_dir());
    cmd
}

fn identities_dir() -> Option<PathBuf> {
    match std::env::var_os("VIGIL_TEST_IDENTITIES_DIR") {
        Some(dir) => Some(PathBuf::from(dir)),
        None if std::env::var_os("CI").is_some() => {
            panic!("VIGIL_TEST_IDENTITIES_DIR is not set: run the tests through `make test`")
        }
        None => {
            eprintln!("SKIPPED: VIGIL_TEST_IDENTITIES_DIR is not set (`make test` sets it)");
            None
        }
    }
}

/// The `key=value` fields of a line.
fn fields(line: &str) -> std::collections::HashMap<&str, &str> {
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .collect()
}

#[test]
fn eval_recognizer_tells_the_shared_identities_apart() {
    let Some(dir) = identities_dir() else {
        return;
    };
    let output = vigil().arg("eval-recognizer").arg(&dir).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let last = stdout.lines().last().expect("a summary line");
    eprintln!("{last}");
    let f = fields(last);
    let number = |k: &str| -> f64 { f[k].parse().unwrap_or_else(|_| panic!("{k} in {last}")) };
    assert!(number("pair_accuracy") >= 0.995, "{last}");
    assert_eq!(number("missed"), 0.0, "every photo embedded: {stdout}");
    // Five people with eleven photos each: 5·C(11,2) same, C(55,2) − that different.
    assert_eq!(number("same_pairs"), 275.0, "{last}");
    assert_eq!(number("diff_pairs"), 1210.0, "{last}");
    assert!(number("tar_at_far_0.001") >= 0.99, "{last}");
    let best = number("best_threshold");
    assert!((0.3..=0.8).contains(&best), "{last}");
}

/// The shared identities split as a household would have them: three
/// people enrolled with their first five photos, their six others as
/// probes, and the two remaining people as strangers at the door.
fn open_set_folders(identities: &Path, root: &Path) -> [PathBuf; 3] {
    let [gallery, probes, strangers] = ["gallery", "probes", "strangers"].map(|d| root.join(d));
    let mut people: Vec<PathBuf> = std::fs::read_dir(identities)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    people.sort();
    assert_eq!(people.len(), 5, "{}", identities.display());
    for (i, person) in people.iter().enumerate() {
        let name = person.file_name().unwrap();
        let mut photos: Vec<PathBuf> = std::fs::read_dir(person)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        photos.sort();
        for (j, photo) in photos.iter().enumerate() {
            let role = match (i < 3, j < 5) {
                (true, true) => &gallery,
                (true, false) => &probes,
                (false, _) => &strangers,
            };
            let dir = role.join(name);
            std::fs::create_dir_all(&dir).unwrap();
            std::os::unix::fs::symlink(photo, dir.join(photo.file_name().unwrap())).unwrap();
        }
    }
    [gallery, probes, strangers]
}

fn eval_open_set(folders: &[PathBuf; 3], extra: &[&str]) -> std::process::Output {
    vigil()
        .arg("eval-recognizer")
        .arg("--gallery")
        .arg(&folders[0])
        .arg("--probes")
        .arg(&folders[1])
        .arg("--strangers")
        .arg(&folders[2])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn eval_recognizer_open_set_names_the_enrolled_and_not_the_strangers() {
    let Some(identities) = identities_dir() else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let folders = open_set_folders(&identities, root.path());
    let summary = |output: &std::process::Output| -> String {
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        eprintln!("{stdout}");
        stdout.lines().last().expect("a summary line").to_owned()
    };
    // The "not" corrections' line: each stranger's first photo corrected
    // when it is named, their other photos judged again.
    let feedback = |output: &std::process::Output| -> HashMap<String, f64> {
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix("feedback: "))
            .unwrap_or_else(|| panic!("a feedback line in {stdout}"));
        fields(line)
            .into_iter()
            .map(|(k, v)| {
                (
                    k.to_owned(),
                    v.parse().unwrap_or_else(|_| panic!("{k} in {line}")),
                )
            })
            .collect()
    };

    let output = eval_open_set(&folders, &[]);
    let corrected = feedback(&output);
    // Two strangers of 11 photos each: 20 later visits, none named, nothing to correct.
    assert_eq!(
        (
            corrected["corrections"],
            corrected["later_visits"],
            corrected["far_before"],
            corrected["far_after"]
        ),
        (0.0, 20.0, 0.0, 0.0),
        "{corrected:?}"
    );
    assert_eq!(corrected["tar_before"], corrected["tar_after"], "{corrected:?}");
    let last = summary(&output);
    let f = fields(&last);
    let number = |k: &str| -> f64 { f[k].parse().unwrap_or_else(|_| panic!("{k} in {last}")) };
    // At the server's defaults.
    assert_eq!((f["threshold"], f["margin"]), ("0.550", "0.050"), "{last}");
    assert_eq!(
        (number("probes"), number("strangers"), number("missed")),
        (18.0, 22.0, 0.0),
        "{last}"
    );
    assert!(number("tar") >= 0.9, "{last}");
    assert_eq!(number("far"), 0.0, "{last}");
    assert_eq!(number("misnamed"), 0.0, "{last}");

    // A rule loose enough to take anyone for the nearest enrolled person:
    // strangers get names, and the figures say so.
    let output = eval_open_set(&folders, &["--threshold", "1.5", "--margin", "0"]);
    let last = summary(&output);
    let f = fields(&last);
    let number = |k: &str| -> f64 { f[k].parse().unwrap_or_else(|_| panic!("{k} in {last}")) };
    assert_eq!((f["threshold"], f["margin"]), ("1.500", "0.000"), "{last}");
    assert_eq!(number("far"), 1.0, "{last}");
    assert!(number("tar") >= 0.9, "{last}");
    // Each stranger's first photo is taken for each of the three enrolled in
    // turn and corrected three times; their later photos are then no longer
    // taken for anyone, while the enrolled keep their names.
    let corrected = feedback(&output);
    assert_eq!(
        (
            corrected["corrections"],
            corrected["later_visits"],
            corrected["far_before"]
        ),
        (6.0, 20.0, 1.0),
        "{corrected:?}"
    );
    assert!(corrected["false_accepts_removed"] >= 15.0, "{corrected:?}");
    assert!(corrected["far_after"] <= 0.25, "{corrected:?}");
    assert!(
        corrected["tar_after"] >= corrected["tar_before"] - 0.06,
        "{corrected:?}"
    );

    // Probes of someone who is not enrolled are a mistake in the folders.
    let stranger_dir = std::fs::read_dir(&folders[2])
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let stranger = std::fs::read_dir(stranger_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::create_dir_all(folders[1].join("Nobody")).unwrap();
    std::os::unix::fs::symlink(&stranger, folders[1].join("Nobody/face.jpg")).unwrap();
    let refused = eval_open_set(&folders, &[]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("\"Nobody\"") && stderr.contains("--strangers"),
        "{stderr}"
    );
}

#[test]
fn embed_prints_a_descriptor_per_face_and_none_for_no_face() {
    let assets = models_dir().join("test-assets");
    let output = vigil()
        .args(["embed", "--json"])
        .arg(assets.join("astronaut.png"))
        .arg(assets.join("coffee.png"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(lines[0]["model"], "dlib_resnet_v1+sp5");
    let faces = lines[0]["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 1, "{stdout}");
    let embedding: Vec<f64> = serde_json::from_value(faces[0]["embedding"].clone()).unwrap();
    assert_eq!(embedding.len(), 128);
    assert!(embedding.iter().all(|v| v.is_finite()));
    assert!(
        embedding.iter().map(|v| v * v).sum::<f64>() > 0.01,
        "not all zeros"
    );
    assert!(faces[0]["box"]["width"].as_f64().unwrap() > 10.0);
    assert_eq!(
        lines[1]["faces"].as_array().unwrap().len(),
        0,
        "coffee has no face"
    );

    // A face shown smaller than --min-face gets no descriptor, never a guess.
    let output = vigil()
        .args(["embed", "--json", "--min-face", "1000"])
        .arg(assets.join("astronaut.png"))
        .output()
        .unwrap();
    let line: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(line["faces"][0]["embedding"].is_null(), "{line}");
}

#[test]
fn a_damaged_recognition_model_stops_serve_with_a_clear_message() {
    let models = models_dir();
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&models).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::os::unix::fs::symlink(entry.path(), dir.path().join(entry.file_name())).unwrap();
        }
    }
    let network = dir.path().join("dlib_face_recognition_resnet_model_v1.dat");
    let mut bytes = std::fs::read(models.join("dlib_face_recognition_resnet_model_v1.dat"))
        .expect("run `make models` to fetch the recognition model");
    bytes.truncate(bytes.len() / 2);
    std::fs::remove_file(&network).unwrap();
    std::fs::write(&network, &bytes).unwrap();

    let output = vigil()
        .arg("serve")
        .args(["--bind", "127.0.0.1:0", "--db-timeout-secs", "1"])
        .args(["--mongodb-uri", "mongodb://127.0.0.1:9/"])
        .arg("--models-dir")
        .arg(dir.path())
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("dlib_face_recognition_resnet_model_v1.dat"),
        "{stderr}"
    );
    assert!(stderr.contains("make models"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
