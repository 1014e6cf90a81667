#![allow(clippy::unwrap_used)]
use super::*;
use pairscale_core::Owner;
use serde_json::json;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct T {
    fleet: FleetName,
    ttl_seconds: Option<u64>,
}

impl Fields for T {}

#[test]
fn errors_name_the_field_and_value() {
    let e = parse::<T>(&json!({"action": "x", "fleet": "voice", "ttl_seconds": "soon"}))
        .expect_err("type");
    let msg = e.to_string();
    assert!(msg.contains("ttl_seconds") && msg.contains("soon"), "{msg}");
    let e = parse::<T>(&json!({"fleet": "Bad!"})).expect_err("fleet");
    assert!(
        e.to_string().contains("fleet") && e.to_string().contains("Bad!"),
        "{e}"
    );
    let e = parse::<T>(&json!({"fleet": "voice", "extra": 1})).expect_err("unknown");
    assert!(e.to_string().contains("extra"), "{e}");
    let e = parse::<T>(&json!({})).expect_err("missing");
    assert!(e.to_string().contains("fleet"), "{e}");
}

#[test]
fn unknown_actions_are_refused() {
    assert_eq!(
        action(&json!({"action": "acquire"}), &["acquire"]).expect("known"),
        "acquire"
    );
    let e = action(&json!({"action": "steal"}), &["acquire", "release"]).expect_err("unknown");
    assert!(
        e.to_string().contains("steal") && e.to_string().contains("release"),
        "{e}"
    );
    assert!(action(&json!("acquire"), &["acquire"]).is_err());
}

/// A handler with one plain and one fenced action, for the contract machinery alone.
#[derive(Debug)]
struct Echo;

#[derive(Debug, Serialize, JsonSchema)]
struct Echoed {
    fleet: FleetName,
    owner: Option<Owner>,
}

impl Echo {
    async fn show(&self, i: FleetInput) -> Result<Echoed> {
        Ok(Echoed {
            fleet: i.fleet,
            owner: None,
        })
    }

    async fn write(&self, f: Fenced<T>) -> Result<Echoed> {
        Ok(Echoed {
            fleet: f.input.fleet,
            owner: Some(f.fence.owner),
        })
    }
}

contract! {
    enum EchoAction for Echo {
        "show" => Show(FleetInput) -> Echoed = show,
        "write" => Write(Fenced<T>) -> Echoed = write,
    }
}

const OWNER: &str = "arn:aws:states:us-east-1:123456789012:execution:m:run-1";

#[tokio::test]
async fn an_action_runs_its_method_and_returns_its_output() {
    let out = Echo
        .handle(json!({"action": "write", "fleet": "voice", "owner": OWNER, "token": 7}))
        .await
        .unwrap();
    assert_eq!(out, json!({"fleet": "voice", "owner": OWNER}));
    let out = Echo
        .handle(json!({"action": "show", "fleet": "voice"}))
        .await
        .unwrap();
    assert_eq!(out, json!({"fleet": "voice", "owner": null}));
    let e = Echo.handle(json!({"fleet": "voice"})).await.unwrap_err();
    assert!(e.to_string().contains("must be one of show, write"), "{e}");
}

#[test]
fn a_bad_fence_field_is_named_by_its_path() {
    for (input, field, value) in [
        (
            json!({"fleet": "voice", "owner": OWNER, "token": "abc"}),
            "token",
            "abc",
        ),
        (
            json!({"fleet": "voice", "owner": "nobody", "token": 1}),
            "owner",
            "nobody",
        ),
        (
            json!({"fleet": "voice", "owner": OWNER, "token": 1, "ttl_seconds": "x"}),
            "ttl_seconds",
            "x",
        ),
        (
            json!({"fleet": "voice", "owner": OWNER, "token": 1, "colour": "red"}),
            "colour",
            "red",
        ),
    ] {
        let e = EchoAction::from_fields("write", input.clone()).unwrap_err();
        let Error::InvalidRequest {
            field: f, value: v, ..
        } = &e
        else {
            panic!("{input}: {e}");
        };
        assert_eq!(f, field, "{input}: {e}");
        assert!(v.contains(value), "{input}: {e}");
    }
    let e = EchoAction::from_fields("write", json!({"fleet": "voice", "token": 1})).unwrap_err();
    assert!(e.to_string().contains("owner"), "{e}");
}

/// The enum is the contract: serde's own reading of it accepts and refuses what ours does.
#[test]
fn serde_reads_the_enum_as_the_handler_does() {
    for input in [
        json!({"action": "show", "fleet": "voice"}),
        json!({"action": "write", "fleet": "voice", "owner": OWNER, "token": 1}),
        json!({"action": "write", "fleet": "voice", "owner": OWNER, "token": 1, "ttl_seconds": 5}),
        json!({"action": "write", "fleet": "voice", "owner": OWNER, "token": 1, "x": 1}),
        json!({"action": "write", "fleet": "voice", "token": 1}),
        json!({"action": "show", "fleet": "voice", "owner": OWNER}),
        json!({"action": "show"}),
        json!({"action": "steal", "fleet": "voice"}),
        json!({"fleet": "voice"}),
    ] {
        let ours = EchoAction::parse(&input).map(|a| format!("{a:?}"));
        let serde = serde_json::from_value::<EchoAction>(input.clone()).map(|a| format!("{a:?}"));
        assert_eq!(ours.ok(), serde.ok(), "{input}");
    }
}

#[test]
fn the_fence_fields_are_the_fences_wire_names() {
    let fence = Fence {
        owner: Owner::parse(OWNER).unwrap(),
        token: 1,
    };
    let keys: Vec<String> = serde_json::to_value(&fence)
        .unwrap()
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(keys, FENCE_FIELDS);
}
