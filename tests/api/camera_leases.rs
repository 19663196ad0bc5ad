//! Cameras across instances: each camera runs on the one instance holding
//! its lease in `camera_leases`; the others keep it on standby and take it
//! over when the holder stops, dies or loses the database.

use std::time::Duration;

use chrono::{DateTime, Utc};
use vigil::capture::lease::{CameraLeases, Claim, LeaseRow};
use vigil::capture::CameraId;
use vigil::db::migrations::{MigrationSet, Migrator};
use vigil::db::{Database, DatabaseSettings};

use crate::helpers::{database_uri, unique_database_name};

fn millis(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap()
}

#[tokio::test]
async fn a_lease_goes_to_one_instance_is_renewed_by_it_taken_over_once_lapsed_and_released() {
    let db = Database::connect(&DatabaseSettings {
        uri: database_uri(),
        name: unique_database_name(),
        pool_size: 16,
        server_selection_timeout: Duration::from_secs(5),
    })
    .await
    .unwrap();
    // With the collection's validator: the documents written are the schema's.
    let migrations = MigrationSet::embedded().unwrap();
    Migrator::new(&db, &migrations, "test").run().await.unwrap();
    let beat = Duration::from_secs(1);
    let a = CameraLeases::new(&db, "instance-a", beat);
    let b = CameraLeases::new(&db, "instance-b", beat);
    assert_eq!(a.duration(), Duration::from_secs(3));
    assert_eq!(a.safe_window(), Duration::from_secs(2));
    let door: CameraId = "door".parse().unwrap();
    let secs = chrono::Duration::seconds;
    let t0 = millis(Utc::now());

    // Free: the first to ask gets it, for three heartbeats.
    assert_eq!(
        a.acquire(&door, t0).await.unwrap(),
        Claim::Acquired {
            expires_at: t0 + secs(3)
        }
    );
    // Held: another is refused and told by whom, until when.
    let held = LeaseRow {
        camera: "door".into(),
        holder: "instance-a".into(),
        acquired_at: t0,
        expires_at: t0 + secs(3),
    };
    assert_eq!(
        b.acquire(&door, t0 + secs(1)).await.unwrap(),
        Claim::Held(held.clone())
    );
    assert!(!b.renew(&door, t0 + secs(1)).await.unwrap(), "not b's to renew");
    assert!(!b.release(&door).await.unwrap(), "not b's to release");
    assert_eq!(a.get(&door).await.unwrap(), Some(held));
    // The holder asking again keeps it.
    assert!(matches!(
        a.acquire(&door, t0 + secs(1)).await.unwrap(),
        Claim::Acquired { .. }
    ));
    // Renewed: a full lease from the renewal.
    assert!(a.renew(&door, t0 + secs(2)).await.unwrap());
    let Claim::Held(row) = b.acquire(&door, t0 + secs(4)).await.unwrap() else {
        panic!("taken before the renewed lease lapsed");
    };
    assert_eq!(row.expires_at, t0 + secs(5));
    // Lapsed: taken over; the old holder learns it at its next renewal.
    assert_eq!(
        b.acquire(&door, t0 + secs(5)).await.unwrap(),
        Claim::Acquired {
            expires_at: t0 + secs(8)
        }
    );
    assert!(!a.renew(&door, t0 + secs(5)).await.unwrap());
    assert!(!a.release(&door).await.unwrap());
    let row = a.get(&door).await.unwrap().unwrap();
    assert_eq!(
        (row.holder.as_str(), row.acquired_at),
        ("instance-b", t0 + secs(5))
    );
    // Released: free at once for anyone.
    assert!(b.release(&door).await.unwrap());
    assert_eq!(a.get(&door).await.unwrap(), None);
    assert!(matches!(
        a.acquire(&door, t0 + secs(5)).await.unwrap(),
        Claim::Acquired { .. }
    ));

    // Eight instances racing for a free camera: exactly one gets it, and
    // the others are told which.
    let racers: Vec<CameraLeases> = (0..8)
        .map(|i| CameraLeases::new(&db, &format!("racer-{i}"), beat))
        .collect();
    let gate: CameraId = "gate".parse().unwrap();
    let now = Utc::now();
    let claims = futures_util::future::join_all(racers.iter().map(|r| r.acquire(&gate, now))).await;
    let claims: Vec<Claim> = claims.into_iter().map(Result::unwrap).collect();
    let winners: Vec<usize> = (0..8)
        .filter(|&i| matches!(claims[i], Claim::Acquired { .. }))
        .collect();
    assert_eq!(winners.len(), 1, "{claims:?}");
    let winner = format!("racer-{}", winners[0]);
    for claim in &claims {
        match claim {
            Claim::Acquired { .. } => {}
            Claim::Held(row) => assert_eq!(row.holder, winner),
            Claim::Released => panic!("nobody released: {claims:?}"),
        }
    }
}
