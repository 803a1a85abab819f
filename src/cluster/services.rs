//! The process's services around the workers: the QuestDB sink, the alert rules store and
//! notifier, the live state and query API (`[serve]`), the status server. Started before the
//! workers, closed after them.

use std::sync::Arc;

use anyhow::Context as _;

use super::Output;
use crate::alerts::api::stats_route as alert_stats_route;
use crate::alerts::dataflow::AlertsRuntime;
use crate::alerts::notify::{Notifier, Outputs as AlertOutputs, alerts_ddl};
use crate::alerts::rule::RuleContext;
use crate::alerts::{AlertsConfig, RuleStore, routes as alert_routes};
use crate::config::Built;
use crate::sinks::questdb::{Name, QuestDbSink, SinkHandle, Tables};
use crate::sinks::worker::{AckTable, record_ack};
use crate::status::{ProcessMetrics, StatusServer};

/// The running services of one process.
pub struct Services {
    questdb: Option<(QuestDbSink, Arc<Tables>)>,
    acks: AckTable,
    alerts: Option<(Arc<RuleStore>, Notifier, RuleContext, AlertsConfig)>,
    server: Option<StatusServer>,
    live: Option<Arc<crate::serve::LiveStore>>,
}

impl Services {
    /// Starts what `output` needs: for the configured sinks the QuestDB sink, alerts and the
    /// status server; for a replay nothing.
    pub fn start(
        built: &Built,
        process: usize,
        output: &Output,
        metrics: &Arc<ProcessMetrics>,
    ) -> anyhow::Result<Services> {
        let acks: AckTable = Arc::new((0..built.workers * built.processes.len()).map(|_| Default::default()).collect());
        let questdb = match (output, &built.questdb) {
            (Output::Configured, Some(cfg)) => {
                let tables = Tables::new(&built.set, &cfg.table_prefix).context("QuestDB table layout")?;
                let m = metrics.clone();
                let a = acks.clone();
                let alerts_ddl = built.alerts.iter().map(|_| alerts_ddl(&format!("{}alerts", cfg.table_prefix)));
                let sink = QuestDbSink::builder(cfg.clone(), &tables)
                    .workers(built.workers)
                    .report_to(metrics.clone())
                    .extra_ddl(alerts_ddl)
                    .on_ack(move |seq| {
                        record_ack(&a, seq);
                        m.mark_sink_flush();
                    })
                    .on_rejected(
                        |row| tracing::error!(line = %row.line, message = %row.message, "QuestDB rejected a row"),
                    )
                    .start()
                    .with_context(|| format!("starting the QuestDB sink at {}", cfg.addr))?;
                Some((sink, Arc::new(tables)))
            }
            _ => None,
        };
        metrics.set_sink_reachable(true);
        // Alerts: the rules store (compacted topic + mirror), the notifier thread, the /rules routes.
        let alerts = match (output, &built.alerts) {
            (Output::Configured, Some(cfg)) => {
                let store = Arc::new(RuleStore::start(cfg).context("alerts: the rules topic")?);
                let qdb = match (&questdb, &built.questdb) {
                    (Some((sink, _)), Some(q)) => {
                        let table = Name::table(&format!("{}alerts", q.table_prefix)).context("alerts table name")?;
                        Some((sink.handle(), table))
                    }
                    _ => None,
                };
                let outbox = crate::alerts::config::outbox_for(&cfg.outbox, process);
                let notifier = Notifier::start(cfg, AlertOutputs { questdb: qdb, outbox: Some(outbox) })
                    .context("alerts: the notifier")?;
                let stats = notifier.handle().stats();
                metrics.add_exposer(Arc::new(move |out: &mut String| {
                    crate::alerts::metrics::render_into(out, process, &stats)
                }));
                let ctx = RuleContext::new(&built.set, &built.windows.timeframes)
                    .with_targets(crate::alerts::notify::target::TargetPolicy::new(&cfg.allowed_hosts))
                    .with_telegram(cfg.telegram_bot_token.as_deref().is_some_and(|t| !t.trim().is_empty()));
                Some((store, notifier, ctx, cfg.clone()))
            }
            _ => None,
        };
        let live = match (output, &built.serve) {
            (Output::Configured, Some(spec)) => Some(Arc::new(crate::serve::LiveStore::new(spec.clone()))),
            _ => None,
        };
        let server = match output {
            Output::Configured => {
                use warp::Filter as _;
                let addr = built.status_addr(process);
                let options = built.status_options.clone();
                let mut extra = alerts.as_ref().map(|(store, notifier, ctx, cfg)| {
                    let access = crate::alerts::api::RulesAccess::new(cfg, &options.read_tokens, &options.limits);
                    alert_routes(store.clone(), ctx.clone(), access.clone())
                        .or(alert_stats_route(notifier.handle().stats(), &access))
                        .unify()
                        .boxed()
                });
                if let (Some(store), Some(spec)) = (&live, &built.serve) {
                    let api = crate::serve::api::Api::new(built, spec, process, store.clone(), metrics.clone());
                    let serve = crate::serve::routes::routes(Arc::new(api));
                    extra = Some(match extra {
                        Some(e) => e.or(serve).unify().boxed(),
                        None => serve,
                    });
                }
                let server = StatusServer::start_with(addr, metrics.clone(), extra, options)
                    .with_context(|| format!("starting the status server on {addr}"))?;
                tracing::info!(addr = %server.local_addr(), "status server listening");
                Some(server)
            }
            Output::Replay(_) => None,
        };
        Ok(Services { questdb, acks, alerts, server, live })
    }

    /// The live state the workers publish to (`[serve]`), if serving.
    pub fn live(&self) -> Option<Arc<crate::serve::LiveStore>> {
        self.live.clone()
    }

    /// What each worker needs to write to QuestDB.
    pub fn questdb_out(&self) -> Option<(SinkHandle, Arc<Tables>, AckTable)> {
        self.questdb.as_ref().map(|(s, t)| (s.handle(), t.clone(), self.acks.clone()))
    }

    /// What each worker's alert dataflow needs.
    pub fn alerts_runtime(&self) -> Option<AlertsRuntime> {
        self.alerts.as_ref().map(|(store, notifier, ctx, cfg)| AlertsRuntime {
            mirror: store.mirror(),
            ctx: ctx.clone(),
            notifier: Some(notifier.handle()),
            poll_interval: cfg.poll_interval(),
        })
    }

    /// Stops everything, in order: the notifier (delivering what it holds), the QuestDB sink
    /// (flushing when the run succeeded), the status server.
    pub fn close(self, flush: bool) -> anyhow::Result<()> {
        if let Some((_, notifier, _, _)) = self.alerts {
            notifier.close();
        }
        let mut result = Ok(());
        if let Some((sink, _)) = self.questdb {
            if flush {
                result = sink.close().map(drop).context("closing the QuestDB sink");
            } else {
                drop(sink);
            }
        }
        if let Some(s) = self.server {
            s.shutdown();
        }
        result
    }
}
