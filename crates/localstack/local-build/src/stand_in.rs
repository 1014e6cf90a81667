//! The stand-in for Terraform and Ansible, where the project gives no buildspec that runs
//! here. **Not the real tools**: it writes the same records they write, where pairscale reads
//! them (tagged EC2 instances and ECS services, rows in Kamailio's dispatcher table).

use crate::env::LocalBuildEnv;
use crate::nodes;
use anyhow::{anyhow, bail, Context as _, Result};
use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use pairscale_aws::tags;
use pairscale_core::build::env as build_env;
use pairscale_dispatcher::{Destination, DispatcherConfig, KamailioDispatcher};
use std::collections::BTreeSet;

/// What a converge does: pairs to create, and running pairs to destroy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converge {
    pub create: Vec<String>,
    pub destroy: Vec<String>,
}

pub fn converge(wanted: &BTreeSet<String>, running: &BTreeSet<String>) -> Converge {
    Converge {
        create: wanted.difference(running).cloned().collect(),
        destroy: running.difference(wanted).cloned().collect(),
    }
}

pub(crate) async fn terraform(
    env: &LocalBuildEnv,
    ec2: &aws_sdk_ec2::Client,
    ecs: &aws_sdk_ecs::Client,
) -> Result<()> {
    let wanted = env.wanted_pairs()?;
    let warm = env.warm_pairs()?;
    let existing = nodes::all_instances(ec2, &env.fleet).await?;
    let plan = converge(&wanted, &existing.keys().cloned().collect());
    println!(
        "plan: {} to add, {} to destroy",
        plan.create.len(),
        plan.destroy.len()
    );
    std::fs::create_dir_all(env.state_dir.join("nodes"))?;
    ecs.create_cluster()
        .cluster_name(&env.ecs_cluster)
        .send()
        .await
        .context("ecs:CreateCluster")?;
    // A node whose instance runs but whose FreeSWITCH died (a restart of the stack) is
    // started again: Terraform would not notice, but the machine behind the address would
    // still be there. A pair going into or out of the warm pool keeps its instance, stopped
    // or started in place, as `aws_ec2_instance_state` does.
    let mut standing: Vec<(String, String)> = Vec::new();
    let mut stopped: Vec<String> = Vec::new();
    for (pair, i) in existing.iter().filter(|(p, _)| wanted.contains(*p)) {
        match (warm.contains(pair), i.is_stopped()) {
            (true, true) => stopped.push(pair.clone()),
            (true, false) => {
                delete_client(env, ecs, pair).await?;
                stop_instance(ec2, &i.id).await?;
                println!("{pair}: stopped ({}), back in the warm pool", i.ip);
                stopped.push(pair.clone());
            }
            (false, true) => {
                start_instance(ec2, &i.id).await?;
                make_client(env, ecs, pair, &i.ip).await?;
                println!("{pair}: started from the warm pool at {}", i.ip);
                standing.push((pair.clone(), i.ip.clone()));
            }
            (false, false) => standing.push((pair.clone(), i.ip.clone())),
        }
    }
    for pair in &plan.create {
        let (instance, ip) = launch(env, ec2, pair).await?;
        if warm.contains(pair) {
            stop_instance(ec2, &instance).await?;
            println!("created {pair} at {ip}, stopped (warm pool)");
            stopped.push(pair.clone());
        } else {
            make_client(env, ecs, pair, &ip).await?;
            println!("created {pair} at {ip}");
            standing.push((pair.clone(), ip));
        }
    }
    nodes::ensure_all(env, &standing).await?;
    nodes::stop_all(env, &stopped).await?;
    nodes::stop_all(env, &plan.destroy).await?;
    for pair in &plan.destroy {
        let i = &existing[pair];
        destroy_pair(env, ec2, ecs, pair, &i.id).await?;
        println!("destroyed {pair} ({})", i.ip);
    }
    println!("apply complete");
    Ok(())
}

async fn stop_instance(ec2: &aws_sdk_ec2::Client, instance: &str) -> Result<()> {
    ec2.stop_instances()
        .instance_ids(instance)
        .send()
        .await
        .context("ec2:StopInstances")?;
    Ok(())
}

async fn start_instance(ec2: &aws_sdk_ec2::Client, instance: &str) -> Result<()> {
    ec2.start_instances()
        .instance_ids(instance)
        .send()
        .await
        .context("ec2:StartInstances")?;
    Ok(())
}

fn service_name(fleet: &str, pair: &str) -> String {
    format!("{fleet}-{pair}-esl")
}

/// A pair's instance: (instance id, private IP).
async fn launch(
    env: &LocalBuildEnv,
    ec2: &aws_sdk_ec2::Client,
    pair: &str,
) -> Result<(String, String)> {
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
    let out = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type(aws_sdk_ec2::types::InstanceType::C6gLarge)
        .min_count(1)
        .max_count(1)
        .subnet_id(&env.subnet_id)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .tags(tag(tags::FLEET, &env.fleet))
                .tags(tag(tags::PAIR_ID, pair))
                .tags(tag(tags::ROLE, tags::ROLE_FREESWITCH))
                .tags(tag("Name", &format!("{}-{pair}-freeswitch", env.fleet)))
                .build(),
        )
        .send()
        .await
        .context("ec2:RunInstances")?;
    let launched = out
        .instances()
        .first()
        .ok_or_else(|| anyhow!("RunInstances returned no instance"))?;
    let ip = launched
        .private_ip_address()
        .ok_or_else(|| anyhow!("RunInstances returned no private address"))?
        .to_string();
    let id = launched
        .instance_id()
        .ok_or_else(|| anyhow!("RunInstances returned no instance id"))?
        .to_string();
    Ok((id, ip))
}

/// A pair's ESL client: its task definition and service, told the node's address.
async fn make_client(
    env: &LocalBuildEnv,
    ecs: &aws_sdk_ecs::Client,
    pair: &str,
    ip: &str,
) -> Result<()> {
    let td = ecs
        .register_task_definition()
        .family(format!("{}-{pair}-esl-client", env.fleet))
        .container_definitions(
            aws_sdk_ecs::types::ContainerDefinition::builder()
                .name("esl-client")
                .image("pairscale/esl-client:local")
                .memory(256)
                .environment(
                    aws_sdk_ecs::types::KeyValuePair::builder()
                        .name("FREESWITCH_ESL_HOST")
                        .value(ip)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .context("ecs:RegisterTaskDefinition")?;
    let td_arn = td
        .task_definition()
        .and_then(|t| t.task_definition_arn())
        .ok_or_else(|| anyhow!("RegisterTaskDefinition returned no ARN"))?;
    let etag = |k: &str, v: &str| aws_sdk_ecs::types::Tag::builder().key(k).value(v).build();
    ecs.create_service()
        .cluster(&env.ecs_cluster)
        .service_name(service_name(&env.fleet, pair))
        .task_definition(td_arn)
        .desired_count(1)
        .tags(etag(tags::FLEET, &env.fleet))
        .tags(etag(tags::PAIR_ID, pair))
        .tags(etag(tags::ROLE, "esl-client"))
        .send()
        .await
        .context("ecs:CreateService")?;
    Ok(())
}

async fn destroy_pair(
    env: &LocalBuildEnv,
    ec2: &aws_sdk_ec2::Client,
    ecs: &aws_sdk_ecs::Client,
    pair: &str,
    instance: &str,
) -> Result<()> {
    delete_client(env, ecs, pair).await?;
    ec2.terminate_instances()
        .instance_ids(instance)
        .send()
        .await
        .context("ec2:TerminateInstances")?;
    Ok(())
}

/// A pair's ESL client gone. A build stopped between RunInstances and CreateService leaves an
/// instance without its service, and a warm pair has none: Terraform would destroy only what
/// its state holds, so a missing service is not an error here either.
async fn delete_client(env: &LocalBuildEnv, ecs: &aws_sdk_ecs::Client, pair: &str) -> Result<()> {
    match ecs
        .delete_service()
        .cluster(&env.ecs_cluster)
        .service(service_name(&env.fleet, pair))
        .force(true)
        .send()
        .await
    {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_service_not_found_exception()) =>
        {
            println!("{pair} has no ESL-client service");
        }
        Err(e) => return Err(anyhow::Error::new(e).context("ecs:DeleteService")),
    }
    Ok(())
}

pub(crate) async fn ansible(env: &LocalBuildEnv, ec2: &aws_sdk_ec2::Client) -> Result<()> {
    let playbook = env
        .playbook
        .as_deref()
        .ok_or_else(|| anyhow!("{} is not set", build_env::PLAYBOOK))?;
    let ids: Vec<String> = serde_json::from_str(
        env.pair_ids
            .as_deref()
            .ok_or_else(|| anyhow!("{} is not set", build_env::PAIR_IDS))?,
    )
    .with_context(|| format!("{} is not a JSON list", build_env::PAIR_IDS))?;
    let dispatcher = KamailioDispatcher::new(
        DispatcherConfig::new(&env.dispatcher_db_url, env.kamailio_rpc_url.clone())
            .map_err(|e| anyhow!("dispatcher: {e}"))?,
    )
    .map_err(|e| anyhow!("dispatcher: {e}"))?;
    match playbook {
        "scale_out" => {
            let running = nodes::instances(ec2, &env.fleet).await?;
            for pair in &ids {
                let (_, ip) = running
                    .get(pair)
                    .ok_or_else(|| anyhow!("{pair}: no running instance to configure"))?;
                let d = Destination::new(env.set_id, format!("sip:{ip}:{}", env.sip_port), pair)
                    .map_err(|e| anyhow!("{pair}: {e}"))?;
                again(pair, || dispatcher.register(&d)).await?;
                // Out of rotation until the state machine's health check resumes it.
                again(pair, || dispatcher.disable(&d)).await?;
                println!("{pair}: registered {} (disabled)", d.uri);
            }
        }
        "scale_in" => {
            // By pair id, as the playbook does: the node's instance may be gone already.
            let listed = dispatcher.list().await.map_err(|e| anyhow!("{e}"))?;
            for pair in &ids {
                let rows: Vec<_> = listed
                    .iter()
                    .filter(|s| s.set_id == env.set_id && s.duid.as_deref() == Some(pair))
                    .collect();
                if rows.is_empty() {
                    println!("{pair}: not in the dispatcher; nothing to deregister");
                }
                for s in rows {
                    let d = Destination::new(env.set_id, s.uri.clone(), pair)
                        .map_err(|e| anyhow!("{pair}: {e}"))?;
                    let outcome = dispatcher
                        .deregister(&d)
                        .await
                        .map_err(|e| anyhow!("{pair}: {e}"))?;
                    println!("{pair}: deregistered {} ({outcome:?})", d.uri);
                }
            }
        }
        other => bail!(
            "{}={other:?} must be scale_out or scale_in",
            build_env::PLAYBOOK
        ),
    }
    println!("playbook {playbook} complete");
    Ok(())
}

/// A dispatcher change, made again while Kamailio or its database is away for a moment (a
/// restart), as the role's reload handler asks again (`retries: 10`, `delay: 2`); any other
/// failure, or one that outlasts the retries, fails the build. Both changes are idempotent.
async fn again<T, F, Fut>(pair: &str, mut change: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, pairscale_dispatcher::DispatcherError>>,
{
    const RETRIES: u32 = 10;
    const DELAY: std::time::Duration = std::time::Duration::from_secs(2);
    let mut retried = 0;
    loop {
        match change().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_retryable() && retried < RETRIES => {
                retried += 1;
                println!(
                    "{pair}: {e}; again in {} s ({retried}/{RETRIES})",
                    DELAY.as_secs()
                );
                tokio::time::sleep(DELAY).await;
            }
            Err(e) => return Err(anyhow!("{pair}: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_kamailio_away_for_a_moment_is_asked_again_and_a_refusal_is_not() {
        use pairscale_dispatcher::DispatcherError;
        let calls = std::cell::Cell::new(0);
        let away = || DispatcherError::Unreachable {
            service: "kamailio",
            detail: "connection refused".into(),
        };
        let answered = again("pair-0001", || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                if n < 3 {
                    Err(away())
                } else {
                    Ok(n)
                }
            }
        })
        .await
        .expect("answered on the third call");
        assert_eq!(answered, 3);

        calls.set(0);
        let e = again("pair-0001", || {
            calls.set(calls.get() + 1);
            async {
                Err::<(), _>(DispatcherError::Conflict {
                    set_id: 1,
                    uri: "sip:127.0.0.9:5060".into(),
                    existing_pair_id: "pair-0002".into(),
                })
            }
        })
        .await
        .expect_err("a conflict is final");
        assert_eq!(calls.get(), 1, "not asked again");
        assert!(e.to_string().starts_with("pair-0001: "), "{e}");
    }

    #[test]
    fn converge_creates_the_missing_and_destroys_the_unwanted() {
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        let c = converge(
            &set(&["pair-0001", "pair-0003"]),
            &set(&["pair-0001", "pair-0002"]),
        );
        assert_eq!(c.create, vec!["pair-0003"]);
        assert_eq!(c.destroy, vec!["pair-0002"]);
    }
}
