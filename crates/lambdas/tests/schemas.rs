//! docs/handlers.md shows the JSON schemas of the handlers' types as they are now.
//! `PAIRSCALE_BLESS=1 cargo test --test schemas` rewrites them. Needs no service.
#![allow(clippy::unwrap_used)]

use pairscale_lambdas::schema;
use std::path::Path;

#[test]
fn docs_handlers_md_carries_the_schemas_of_the_handlers_types() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/handlers.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let fresh = schema::splice(&doc, &schema::markdown()).unwrap_or_else(|| {
        panic!(
            "docs/handlers.md lacks the markers {} and {}",
            schema::BEGIN,
            schema::END
        )
    });
    if std::env::var("PAIRSCALE_BLESS").as_deref() == Ok("1") {
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    assert!(
        doc == fresh,
        "docs/handlers.md does not show the handlers' schemas as the types define them: \
         PAIRSCALE_BLESS=1 cargo test --test schemas rewrites them"
    );
}
