//! N instances started together: the slots reserved, the role run once for all of them, the
//! processes started side by side.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::build::Build;
use crate::error::{Error, Result};
use crate::instance::Instance;
use crate::render;
use crate::slot::Slot;

/// What to start.
#[derive(Debug, Clone)]
pub struct Options {
    pub instances: usize,
    /// The Event Socket password of every instance (the role wants 16 characters or more).
    pub esl_password: String,
    /// How long the canary extension holds a call before FreeSWITCH hangs up. Tests that
    /// hang up themselves keep it well above their calls' length.
    pub canary_seconds: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            instances: 1,
            esl_password: "pairscale-test-esl-password".into(),
            canary_seconds: 300,
        }
    }
}

/// Running instances; all of them are killed when this is dropped.
#[derive(Debug)]
pub struct Cluster {
    instances: Vec<Instance>,
    work: PathBuf,
}

impl Cluster {
    /// Starts `options.instances` instances, each configured by the FreeSWITCH role.
    pub async fn start(options: Options) -> Result<Cluster> {
        let build = Build::from_env()?;
        // The same folder for a slot in every run (not the run's work folder): a FreeSWITCH a
        // killed test left behind is found there by its pid file, whichever run left it.
        let base = std::env::temp_dir().join("pairscale-freeswitch");
        static CLUSTERS: AtomicU32 = AtomicU32::new(0);
        let work = base.join(format!(
            "cluster-{}-{}",
            std::process::id(),
            CLUSTERS.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&work)
            .map_err(Error::io(format!("creating {}", work.display())))?;
        let mut cluster = Cluster {
            instances: Vec::with_capacity(options.instances),
            work,
        };
        for i in 0..options.instances {
            let slot = Slot::reserve()?;
            cluster.instances.push(Instance::prepare(
                format!("fs{}", i + 1),
                slot,
                &base,
                build.freeswitch(),
                options.esl_password.clone(),
            )?);
        }
        let modules = build.modules()?;
        let hosts: Vec<_> = cluster
            .instances
            .iter()
            .map(|i| i.host_vars(options.canary_seconds, &modules))
            .collect();
        render::render(&build, &cluster.work, &hosts).await?;
        let started =
            futures::future::join_all(cluster.instances.iter_mut().map(|i| i.start())).await;
        started.into_iter().collect::<Result<Vec<()>>>()?;
        Ok(cluster)
    }

    pub fn len(&self) -> usize {
        self.instances.len()
    }

    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
    }

    pub fn instances(&self) -> &[Instance] {
        &self.instances
    }

    /// Instance `i` (panics when out of range: a test's own mistake).
    pub fn get(&self, i: usize) -> &Instance {
        &self.instances[i]
    }

    pub fn get_mut(&mut self, i: usize) -> &mut Instance {
        &mut self.instances[i]
    }
}

impl std::ops::Index<usize> for Cluster {
    type Output = Instance;
    fn index(&self, i: usize) -> &Instance {
        self.get(i)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.instances.clear();
        let _ = std::fs::remove_dir_all(&self.work);
    }
}
