//! `pairscale-bench-handlers BIN_DIR`: size, cold start and warm overhead of the release
//! handler binaries `pairscale-lock` and `pairscale-state`, run under the local Runtime API
//! against the local AWS emulator named by `AWS_ENDPOINT_URL`. See `docs/benchmarks.md`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ReturnValue,
    ReturnValuesOnConditionCheckFailure, ScalarAttributeType,
};
use clap::Parser;
use pairscale_bench::{ms, ms_diff, Samples, Table};
use pairscale_lambda_emu::{Function, FunctionSpec, Invocation};
use serde_json::{json, Value};

/// Targets printed beside the figures.
const COLD_START_TARGET: Duration = Duration::from_millis(20);
const OVERHEAD_TARGET: Duration = Duration::from_millis(1);
const WARM_UP: usize = 10;

#[derive(Debug, Parser)]
#[command(about = "Benchmark pairscale's Lambda handler binaries locally")]
struct Args {
    /// The directory holding the release binaries `pairscale-lock` and `pairscale-state`.
    bin_dir: PathBuf,
    /// Cold starts per handler.
    #[arg(long, default_value_t = 10)]
    cold_starts: usize,
    /// Warm invocations per action.
    #[arg(long, default_value_t = 200)]
    warm: usize,
}

/// The names and clients of one run; everything it creates carries `run` in its name.
struct Bench {
    ddb: aws_sdk_dynamodb::Client,
    ssm: aws_sdk_ssm::Client,
    table: String,
    prefix: String,
    fleet: String,
    /// The lock item the bare SDK calls write, apart from the handler's.
    bare_fleet: String,
    last_token: u64,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    if !(endpoint.starts_with("http://127.0.0.1") || endpoint.starts_with("http://localhost")) {
        bail!("AWS_ENDPOINT_URL is '{endpoint}': point it at the local AWS emulator (tests/bench/handlers.sh does)");
    }
    let lock_bin = binary(&args.bin_dir, "pairscale-lock")?;
    let state_bin = binary(&args.bin_dir, "pairscale-state")?;

    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let mut bench = Bench {
        ddb: aws_sdk_dynamodb::Client::new(&sdk),
        ssm: aws_sdk_ssm::Client::new(&sdk),
        table: format!("pairscale-bench-{run}"),
        prefix: format!("/pairscale-bench-{run}"),
        fleet: format!("bench-{run}"),
        bare_fleet: format!("bench-bare-{run}"),
        last_token: 0,
    };
    bench.setup().await?;
    let result = bench.run(&args, &lock_bin, &state_bin, &endpoint).await;
    bench.teardown().await;
    result
}

fn binary(dir: &Path, name: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    if !path.is_file() {
        bail!(
            "{} not found: build it with `cargo build --release -p pairscale-lambdas`",
            path.display()
        );
    }
    Ok(path)
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

fn owner(i: usize) -> String {
    format!("arn:aws:states:us-east-1:123456789012:execution:bench:run-{i}")
}

/// The response of an invocation that must succeed; a failure carries the process's output.
async fn invoke_ok(function: &Function, event: Value) -> Result<Value> {
    match function.invoke(event.clone()).await {
        Ok(Invocation::Ok(v)) => Ok(v),
        Ok(Invocation::Error(e)) => bail!(
            "{} answered {event} with {}: {}\n{}",
            function.spec().name,
            e.error_type,
            e.error_message,
            function.logs().render()
        ),
        Err(e) => Err(e).with_context(|| {
            format!(
                "{} on {event}\n{}",
                function.spec().name,
                function.logs().render()
            )
        }),
    }
}

async fn timed<T>(fut: impl std::future::Future<Output = Result<T>>) -> Result<(T, Duration)> {
    let start = Instant::now();
    let out = fut.await?;
    Ok((out, start.elapsed()))
}

struct ColdStarts {
    init: Samples,
    first_response: Samples,
}

struct Warm {
    handler: Samples,
    bare: Samples,
}

/// Release is measured only while the handler's release succeeds.
struct WarmRelease {
    warm: Warm,
    error: Option<String>,
}

impl Bench {
    fn spec(&self, name: &str, binary: &Path) -> FunctionSpec {
        FunctionSpec::new(name, binary)
            .timeout(Duration::from_secs(10))
            .env("PAIRSCALE_TABLE", &self.table)
            .env("PAIRSCALE_SSM_PREFIX", &self.prefix)
            .env("PAIRSCALE_LOCK_TTL_SECONDS", "60")
            .env("PAIRSCALE_ECS_CLUSTER", "pairscale-bench")
    }

    async fn setup(&self) -> Result<()> {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let key = |name: &str, t: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(t)
                .build()
        };
        self.ddb
            .create_table()
            .table_name(&self.table)
            .attribute_definitions(attr("pk")?)
            .attribute_definitions(attr("sk")?)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .context("create the bench table")?;
        let config = json!({
            "min_pairs": 1, "max_pairs": 20, "max_step": 3,
            "cooldown_out_seconds": 60, "cooldown_in_seconds": 600,
            "drain": {"deadline_seconds": 600, "policy": "wait", "hard_max_seconds": 3600},
            "race_spares": 1, "alarm_steps": {}
        });
        for (name, value) in [
            ("pair_count", "2".to_owned()),
            ("config", config.to_string()),
        ] {
            self.ssm
                .put_parameter()
                .name(format!("{}/{}/{name}", self.prefix, self.fleet))
                .value(value)
                .r#type(aws_sdk_ssm::types::ParameterType::String)
                .overwrite(true)
                .send()
                .await
                .with_context(|| format!("put the {name} parameter"))?;
        }
        Ok(())
    }

    async fn teardown(&self) {
        let _ = self.ddb.delete_table().table_name(&self.table).send().await;
        for name in ["pair_count", "config"] {
            let _ = self
                .ssm
                .delete_parameter()
                .name(format!("{}/{}/{name}", self.prefix, self.fleet))
                .send()
                .await;
        }
    }

    async fn run(
        &mut self,
        args: &Args,
        lock_bin: &Path,
        state_bin: &Path,
        endpoint: &str,
    ) -> Result<()> {
        let lock_spec = self.spec("pairscale-lock", lock_bin);
        let state_spec = self.spec("pairscale-state", state_bin);
        let show = json!({"action": "show", "fleet": self.fleet});
        let read = json!({"action": "read", "fleet": self.fleet});

        eprintln!("cold starts: {} per handler ...", args.cold_starts);
        let lock_cold = cold_starts(lock_spec.clone(), &show, args.cold_starts).await?;
        let state_cold = cold_starts(state_spec.clone(), &read, args.cold_starts).await?;

        eprintln!("warm invocations: {} per action ...", args.warm);
        let lock = Function::spawn(lock_spec).await?;
        let state = Function::spawn(state_spec).await?;
        let (acquire, release) = self.warm_lock(&lock, args.warm).await?;
        let read_warm = self.warm_state(&state, args.warm).await?;

        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0);
        println!("pairscale handler benchmark");
        println!(
            "AWS emulator {endpoint}; {cpus} CPUs; {} cold starts per handler; {} warm invocations per action\n",
            args.cold_starts, args.warm
        );

        let mut sizes = Table::new(["binary", "bytes", "MiB"]);
        for bin in [lock_bin, state_bin] {
            let len = std::fs::metadata(bin)
                .with_context(|| format!("stat {}", bin.display()))?
                .len();
            let name = bin
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            sizes.row([
                name,
                len.to_string(),
                format!("{:.2}", len as f64 / (1024.0 * 1024.0)),
            ]);
        }
        println!("Release binary size\n{}", sizes.render());

        let mut cold = Table::new([
            "handler",
            "first event",
            "exec -> GET /next (init)",
            "exec -> first response",
            "first response min..max",
            "target",
        ]);
        for (name, event, c) in [
            ("pairscale-lock", "show", &lock_cold),
            ("pairscale-state", "read", &state_cold),
        ] {
            let met = if c.first_response.median() < COLD_START_TARGET {
                "met"
            } else {
                "MISSED"
            };
            cold.row([
                name.to_owned(),
                event.to_owned(),
                ms(c.init.median()),
                ms(c.first_response.median()),
                format!(
                    "{}..{}",
                    ms(c.first_response.percentile(0.0)),
                    ms(c.first_response.percentile(100.0))
                ),
                format!("< {} ({met})", ms(COLD_START_TARGET)),
            ]);
        }
        println!(
            "Cold start (median of {})\n{}",
            args.cold_starts,
            cold.render()
        );

        let mut warm = Table::new([
            "action",
            "handler p50",
            "handler p99",
            "bare SDK p50",
            "bare SDK p99",
            "overhead p50",
            "overhead p99",
            "target",
        ]);
        let mut failures = Vec::new();
        if let Some(error) = &release.error {
            failures.push(format!(
                "lock release: the handler fails, so only its bare calls are timed: {error}"
            ));
        }
        for (name, w) in [
            ("lock acquire", &acquire),
            ("lock release", &release.warm),
            ("state read", &read_warm),
        ] {
            if w.handler.is_empty() {
                let dash = || "-".to_owned();
                warm.row([
                    name.to_owned(),
                    "FAILS".to_owned(),
                    dash(),
                    ms(w.bare.median()),
                    ms(w.bare.p99()),
                    dash(),
                    dash(),
                    dash(),
                ]);
                continue;
            }
            let overhead = w.handler.median().saturating_sub(w.bare.median());
            let met = if overhead < OVERHEAD_TARGET {
                "met"
            } else {
                "MISSED"
            };
            warm.row([
                name.to_owned(),
                ms(w.handler.median()),
                ms(w.handler.p99()),
                ms(w.bare.median()),
                ms(w.bare.p99()),
                ms_diff(w.handler.median(), w.bare.median()),
                ms_diff(w.handler.p99(), w.bare.p99()),
                format!("p50 < {} ({met})", ms(OVERHEAD_TARGET)),
            ]);
        }
        println!("Warm invocations ({} each)\n{}", args.warm, warm.render());
        println!("handler: invoke through the local Runtime API to the response, in this process.");
        println!("bare SDK: the same AWS calls made directly from this process with the same SDK:");
        println!("  lock acquire = DynamoDB UpdateItem (conditional, ALL_NEW); lock release = DynamoDB UpdateItem;");
        println!("  state read = SSM GetParameter x2 + DynamoDB Query + GetItem, concurrently as the handler does.");
        println!(
            "overhead = handler - bare SDK (runtime API round trip, JSON, validation, logging)."
        );
        if !failures.is_empty() {
            // The figures above stand; the exit status says an action could not be measured.
            bail!("{}", failures.join("\n"));
        }
        Ok(())
    }

    /// Acquire and release, each acquisition on a fleet of its own: one conditional write
    /// creating the lock item, the handler's normal path, whether or not release works.
    async fn warm_lock(&mut self, lock: &Function, n: usize) -> Result<(Warm, WarmRelease)> {
        let base = self.fleet.clone();
        let fleet = |i: usize| format!("{base}-{i}");
        let acquire = |i: usize| json!({"action": "acquire", "fleet": fleet(i), "owner": owner(i), "ttl_seconds": 60});
        let release = |i: usize| json!({"action": "release", "fleet": fleet(i), "owner": owner(i)});
        let mut release_error = None;
        for i in 0..WARM_UP {
            let grant = invoke_ok(lock, acquire(i)).await?;
            if grant.get("token").is_none() {
                bail!("acquire answered without a token: {grant}");
            }
            if let Invocation::Error(e) = lock.invoke(release(i)).await? {
                release_error = Some(format!("{}: {}", e.error_type, e.error_message));
            }
            self.bare_acquire(i, &owner(i)).await?;
            self.bare_release(i, &owner(i)).await?;
        }
        let (mut acq_h, mut rel_h, mut acq_b, mut rel_b) = (vec![], vec![], vec![], vec![]);
        for i in WARM_UP..WARM_UP + n {
            // Interleaved, so drift in the emulator's speed touches both sides alike.
            acq_h.push(timed(invoke_ok(lock, acquire(i))).await?.1);
            if release_error.is_none() {
                rel_h.push(timed(invoke_ok(lock, release(i))).await?.1);
            }
            let who = owner(i);
            let start = Instant::now();
            self.bare_acquire(i, &who).await?;
            acq_b.push(start.elapsed());
            let start = Instant::now();
            self.bare_release(i, &who).await?;
            rel_b.push(start.elapsed());
        }
        Ok((
            Warm {
                handler: Samples::new(acq_h),
                bare: Samples::new(acq_b),
            },
            WarmRelease {
                warm: Warm {
                    handler: Samples::new(rel_h),
                    bare: Samples::new(rel_b),
                },
                error: release_error,
            },
        ))
    }

    async fn warm_state(&self, state: &Function, n: usize) -> Result<Warm> {
        let read = json!({"action": "read", "fleet": self.fleet});
        for _ in 0..WARM_UP {
            let out = invoke_ok(state, read.clone()).await?;
            if out.get("pair_count") != Some(&json!(2)) {
                bail!("read answered {out}");
            }
            self.bare_read().await?;
        }
        let (mut h, mut b) = (vec![], vec![]);
        for _ in 0..n {
            h.push(timed(invoke_ok(state, read.clone())).await?.1);
            b.push(timed(self.bare_read()).await?.1);
        }
        Ok(Warm {
            handler: Samples::new(h),
            bare: Samples::new(b),
        })
    }

    fn lock_update(
        &self,
        i: usize,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.ddb
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("FLEET#{}-{i}", self.bare_fleet)))
            .key("sk", s("LOCK"))
            .expression_attribute_names("#holder", "holder")
            .expression_attribute_names("#ttl", "ttl")
    }

    /// The UpdateItem the lock handler's acquire makes.
    async fn bare_acquire(&mut self, i: usize, owner: &str) -> Result<()> {
        let now = now_ms();
        let token = now.max(self.last_token + 1);
        self.last_token = token;
        self.lock_update(i)
            .update_expression(
                "SET #holder = :me, #token = :cand, acquired_at = :now, #expires = :exp, \
                 heartbeat_at = :now, #request = :req, #ttl = :ttl REMOVE released_at",
            )
            .condition_expression(
                "(attribute_not_exists(#holder) OR #expires <= :now) \
                 AND (attribute_not_exists(#token) OR #token < :cand)",
            )
            .expression_attribute_names("#token", "token")
            .expression_attribute_names("#expires", "expires_at")
            .expression_attribute_names("#request", "request")
            .expression_attribute_values(":me", s(owner))
            .expression_attribute_values(":cand", n(token))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":exp", n(now + 60_000))
            .expression_attribute_values(":req", s(""))
            .expression_attribute_values(":ttl", n(now / 1000 + 60 + 30 * 86_400))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await
            .context("bare acquire")?;
        Ok(())
    }

    /// The UpdateItem the lock handler's release makes (naming only the attributes it uses,
    /// as DynamoDB requires).
    async fn bare_release(&self, i: usize, owner: &str) -> Result<()> {
        let now = now_ms();
        self.lock_update(i)
            .update_expression(
                "REMOVE #holder SET released_at = :now, released_by = :me, #ttl = :ttl",
            )
            .condition_expression("#holder = :me")
            .expression_attribute_values(":me", s(owner))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":ttl", n(now / 1000 + 30 * 86_400))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await
            .context("bare release")?;
        Ok(())
    }

    /// The calls the state handler's read makes, concurrently as it makes them.
    async fn bare_read(&self) -> Result<()> {
        let param = |name: &str| {
            self.ssm
                .get_parameter()
                .name(format!("{}/{}/{name}", self.prefix, self.fleet))
                .with_decryption(false)
                .send()
        };
        let pk = s(format!("FLEET#{}", self.fleet));
        let query = self
            .ddb
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_names("#sk", "sk")
            .expression_attribute_values(":pk", pk.clone())
            .expression_attribute_values(":prefix", s("PAIR#"))
            .consistent_read(true)
            .send();
        let meta = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key("pk", pk)
            .key("sk", s("META"))
            .consistent_read(true)
            .send();
        let (count, config, _, _) = tokio::try_join!(
            async { param("pair_count").await.context("GetParameter pair_count") },
            async { param("config").await.context("GetParameter config") },
            async { query.await.context("Query pairs") },
            async { meta.await.context("GetItem meta") },
        )?;
        // Parse what the handler parses, so the bare side is not given a free pass.
        let count = count
            .parameter()
            .and_then(|p| p.value())
            .context("pair_count missing")?;
        let config = config
            .parameter()
            .and_then(|p| p.value())
            .context("config missing")?;
        count.parse::<u32>().context("pair_count is not a number")?;
        serde_json::from_str::<Value>(config).context("config is not JSON")?;
        Ok(())
    }
}

/// `n` cold starts of `spec`, each answering `event`.
async fn cold_starts(spec: FunctionSpec, event: &Value, n: usize) -> Result<ColdStarts> {
    let function = Function::spawn(spec).await?;
    let (mut init, mut first) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        if i > 0 {
            function.stop().await;
        }
        invoke_ok(&function, event.clone()).await?;
        let timings = function
            .cold_start()
            .await
            .context("no process after a successful invoke")?;
        init.push(timings.init.context("no GET /next recorded")?);
        first.push(timings.first_response.context("no response recorded")?);
    }
    Ok(ColdStarts {
        init: Samples::new(init),
        first_response: Samples::new(first),
    })
}
