//! The harness itself against the real FreeSWITCH: instances on their own addresses, configured
//! by the project's role (the templates load, the SIP profile comes up, the Event Socket ACL
//! admits the drain's address and refuses others), stopped, started and restarted; the canary
//! extension the role installs answers, sends media and hangs up.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use pairscale_esl::{Client, ClientOptions, Error as EslError};
use pairscale_freeswitch::render::OUTSIDER_IP;
use pairscale_freeswitch::{CallPlan, Cluster, Options, RtpSink};
use tokio::net::TcpSocket;

async fn cluster(instances: usize, canary_seconds: u32) -> Cluster {
    Cluster::start(Options {
        instances,
        canary_seconds,
        ..Options::default()
    })
    .await
    .expect("FreeSWITCH instances start")
}

/// An Event Socket session opened from `from` rather than 127.0.0.1.
async fn esl_from(
    from: std::net::Ipv4Addr,
    fs: &pairscale_freeswitch::Instance,
) -> pairscale_esl::Result<Client> {
    let socket = TcpSocket::new_v4()?;
    socket.bind((from, 0).into())?;
    let stream = socket.connect(fs.esl_endpoint().parse().unwrap()).await?;
    Client::handshake(
        stream,
        fs.esl_endpoint(),
        &fs.esl_password(),
        ClientOptions::default(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_run_on_their_own_addresses_with_the_configuration_the_role_renders() {
    let fs = cluster(2, 300).await;
    assert_ne!(fs[0].ip(), fs[1].ip());
    assert_ne!(fs[0].esl_endpoint(), fs[1].esl_endpoint());

    for node in fs.instances() {
        // Rendered by the role: its files carry the managed marker, the vanilla ones are gone.
        let conf = node.conf_dir();
        for file in [
            "autoload_configs/event_socket.conf.xml",
            "autoload_configs/acl.conf.xml",
            "autoload_configs/switch.conf.xml",
            "autoload_configs/modules.conf.xml",
            "sip_profiles/pairscale.xml",
            "dialplan/public/00_pairscale_canary.xml",
        ] {
            let text = std::fs::read_to_string(conf.join(file)).unwrap();
            assert!(
                text.contains("Ansible managed"),
                "{file} not rendered by the role"
            );
        }
        assert!(!conf.join("sip_profiles/internal.xml").exists());

        let mut c = node.esl().await.expect("the drain's address is admitted");
        let status = c.status().await.unwrap();
        assert!(status.ready);
        assert_eq!(
            status.max_sessions, 2000,
            "the role's freeswitch_max_sessions"
        );
        let profile = c.api("sofia status profile pairscale").await.unwrap();
        assert!(
            profile.contains(&format!("sip:mod_sofia@{}", node.sip_addr())),
            "{profile}"
        );
        // Every module the role lists loaded.
        for module in [
            "mod_event_socket",
            "mod_sofia",
            "mod_dptools",
            "mod_tone_stream",
        ] {
            let loaded = c.api(&format!("module_exists {module}")).await.unwrap();
            assert_eq!(loaded.trim(), "true", "{module}");
        }
        // Nothing in the log says a template did not load.
        let log = std::fs::read_to_string(node.log_file()).unwrap();
        for bad in ["[ERR]", "[CRIT]", "Error Loading", "Parse error"] {
            assert!(
                !log.contains(bad),
                "{} logged {bad}:\n{}",
                node.name(),
                node.log_tail(40)
            );
        }

        // The ACL refuses an address it does not list, before the password is asked for.
        match esl_from(OUTSIDER_IP, node).await {
            Err(EslError::AccessDenied { message }) => {
                assert_eq!(message, "Access Denied, go away.")
            }
            other => panic!("connecting from {OUTSIDER_IP}: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_stops_starts_and_restarts_with_a_fresh_state() {
    let mut fs = cluster(1, 300).await;
    let mut c = fs[0].esl().await.unwrap();
    c.pause_all().await.unwrap();
    drop(c);

    fs.get_mut(0).stop().await.unwrap();
    assert!(!fs.get_mut(0).is_running());
    assert!(fs[0].esl().await.is_err(), "a stopped instance answers");

    fs.get_mut(0).start().await.unwrap();
    let mut c = fs[0].esl().await.unwrap();
    assert!(
        !c.pause_check(None).await.unwrap(),
        "the pause outlived a restart"
    );
    c.pause_all().await.unwrap();
    drop(c);

    fs.get_mut(0).restart().await.unwrap();
    let mut c = fs[0].esl().await.unwrap();
    assert!(c.ready_check().await.unwrap());
    assert_eq!(c.status().await.unwrap().sessions_since_startup, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_canary_extension_answers_sends_a_tone_and_hangs_up() {
    const CANARY_SECONDS: u32 = 6;
    let fs = cluster(1, CANARY_SECONDS).await;
    let sink = RtpSink::bind().await.unwrap();

    let out = CallPlan::canary(fs[0].sip_addr(), sink.port())
        .run()
        .await
        .unwrap();

    assert_eq!((out.successful, out.failed), (1, 0), "{out:?}");
    // Hung up by FreeSWITCH after the canary's time and not long after. Its scheduler counts
    // whole seconds of the clock, so "+6 s" comes between 5 and 6 s after the answer.
    assert!(
        out.elapsed >= Duration::from_secs(u64::from(CANARY_SECONDS - 1)),
        "{out:?}"
    );
    assert!(
        out.elapsed < Duration::from_secs(u64::from(CANARY_SECONDS) + 15),
        "{out:?}"
    );
    let streams = sink.streams_from(fs[0].ip());
    assert_eq!(streams.len(), 1, "{streams:?}");
    let (_, tone) = streams[0];
    // 50 packets a second (20 ms of PCMU each) for the canary's length, less a second.
    assert!(
        tone.packets >= 50 * u64::from(CANARY_SECONDS - 2),
        "{tone:?}"
    );
}
