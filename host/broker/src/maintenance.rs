//! Periodic work: time-based flushes (`flush.ms`), retention (`retention.ms`,
//! `retention.bytes`), group session and rebalance timeouts, and the expiry of committed
//! offsets (`offsets.retention.minutes`). Runs until shutdown.

use std::sync::Arc;
use std::time::Duration;

use crate::broker::{now_ms, Broker};

/// How often group sessions and rebalance deadlines are checked.
const GROUP_TICK: Duration = Duration::from_millis(100);

pub fn spawn(broker: Arc<Broker>) {
    let groups = Arc::clone(&broker);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(GROUP_TICK);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    groups.coordinator.tick();
                    if let Err(e) = groups.coordinator.persist_groups(&groups.partitions) {
                        tracing::error!(error = %format!("{e:#}"), "writing group metadata records failed");
                    }
                    if let Err(e) = groups.coordinator.persist_consumer_groups(&groups.partitions) {
                        tracing::error!(error = %format!("{e:#}"), "writing consumer group records failed");
                    }
                }
                _ = groups.shutdown_started() => return,
            }
        }
    });
    let offsets_every = Duration::from_millis(broker.config.i64("offsets.retention.check.interval.ms").max(10) as u64);
    let offsets_retention_ms = match broker.config.i64("offsets.retention.ms") {
        ms if ms >= 0 => ms,
        _ => broker.config.i64("offsets.retention.minutes").saturating_mul(60_000),
    };
    let expirer = Arc::clone(&broker);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(offsets_every);
        tick.tick().await; // the first tick is immediate; wait one interval first
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = expirer.shutdown_started() => return,
            }
            if let Err(e) = expirer
                .coordinator
                .expire_offsets(&expirer.partitions, now_ms(), offsets_retention_ms)
            {
                tracing::error!(error = %format!("{e:#}"), "expiring committed offsets failed");
            }
        }
    });
    let flush_every = Duration::from_millis(broker.config.i64("log.flush.scheduler.interval.ms").max(10) as u64);
    let retention_every = Duration::from_millis(broker.config.i64("log.retention.check.interval.ms").max(10) as u64);
    let flusher = Arc::clone(&broker);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(flush_every);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = flusher.shutdown_started() => return,
            }
            for partition in flusher.partitions.all() {
                let job = partition.log.write().flush_if_due(now_ms());
                if let Some(job) = job {
                    if let Err(e) = partition.run_flush(job).await {
                        tracing::error!(topic = %partition.topic, partition = partition.index, error = %format!("{e:#}"), "scheduled flush failed");
                    }
                }
            }
        }
    });
    if !broker.tls.is_empty() {
        let reload_every = Duration::from_millis(broker.config.i64("ssl.reload.interval.ms").max(10) as u64);
        let broker = Arc::clone(&broker);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(reload_every);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = broker.shutdown_started() => return,
                }
                for tls in broker.tls.values() {
                    match tls.reload_if_changed() {
                        Ok(false) => {}
                        Ok(true) => tracing::info!(listener = %tls.listener, "TLS keystore/truststore reloaded"),
                        Err(e) => {
                            tracing::error!(listener = %tls.listener, error = format!("{e:#}"), "TLS reload failed; keeping the previous certificates")
                        }
                    }
                }
            }
        });
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(retention_every);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = broker.shutdown_started() => return,
            }
            for partition in broker.partitions.all() {
                let deleted = partition.log.write().apply_retention(now_ms());
                match deleted {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(topic = %partition.topic, partition = partition.index, segments = n, "retention deleted segments")
                    }
                    Err(e) => {
                        tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "retention failed")
                    }
                }
            }
        }
    });
}
