//! The dispatcher database the local stack's Kamailio reads, as `PAIRSCALE_TEST_PG_URL` names
//! it. The URL is read by tokio-postgres (`Config`'s `FromStr`), not by hand; a deployment
//! hands its parts on separately: the password through the parameter store (or Terraform's
//! environment), never in a URL a function or a log can show.

use crate::error::StackError;
use tokio_postgres::config::Host;

/// The parts of the dispatcher database's URL.
#[derive(Clone, PartialEq, Eq)]
pub struct DispatcherDb {
    pub user: String,
    pub password: String,
    pub host: String,
    pub port: u16,
    pub dbname: String,
}

impl std::fmt::Debug for DispatcherDb {
    /// Everything but the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DispatcherDb")
            .field("url", &self.url_without_password())
            .finish_non_exhaustive()
    }
}

impl DispatcherDb {
    /// `postgres://user:pass@host[:port]/db` (or libpq's `key=value` form): one TCP host, with
    /// a user, a password and a database; the port defaults to 5432.
    pub fn parse(url: &str) -> Result<DispatcherDb, StackError> {
        let config: tokio_postgres::Config = url.parse()?;
        let host = match config.get_hosts() {
            [Host::Tcp(host)] => host.clone(),
            _ => return Err(StackError::DatabaseUrl("names no single TCP host")),
        };
        let port = match config.get_ports() {
            [] => 5432,
            [port] => *port,
            _ => return Err(StackError::DatabaseUrl("names more than one port")),
        };
        let user = config
            .get_user()
            .filter(|u| !u.is_empty())
            .ok_or(StackError::DatabaseUrl("names no user"))?;
        let password = config
            .get_password()
            .filter(|p| !p.is_empty())
            .ok_or(StackError::DatabaseUrl("names no password"))?;
        let password = String::from_utf8(password.to_vec())
            .map_err(|_| StackError::DatabaseUrl("has a password that is not UTF-8"))?;
        let dbname = config
            .get_dbname()
            .filter(|d| !d.is_empty())
            .ok_or(StackError::DatabaseUrl("names no database"))?;
        Ok(DispatcherDb {
            user: user.to_string(),
            password,
            host,
            port,
            dbname: dbname.to_string(),
        })
    }

    /// The URL without its password, for a function that reads the password elsewhere
    /// (`PAIRSCALE_DISPATCHER_DB_URL_BASE`).
    pub fn url_without_password(&self) -> String {
        self.url_with(None)
    }

    /// The whole URL, for a local build that connects with it.
    pub fn url(&self) -> String {
        self.url_with(Some(&self.password))
    }

    fn url_with(&self, password: Option<&str>) -> String {
        let userinfo = match password {
            Some(p) => format!(
                "{}:{}",
                urlencoding::encode(&self.user),
                urlencoding::encode(p)
            ),
            None => urlencoding::encode(&self.user).into_owned(),
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!(
            "postgres://{userinfo}@{host}:{}/{}",
            self.port,
            urlencoding::encode(&self.dbname)
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_url_gives_user_password_host_port_and_database() {
        let db =
            DispatcherDb::parse("postgres://kam:s3cret@127.0.0.1:6543/pairscale_test").unwrap();
        assert_eq!(
            (db.user.as_str(), db.password.as_str(), db.host.as_str()),
            ("kam", "s3cret", "127.0.0.1")
        );
        assert_eq!((db.port, db.dbname.as_str()), (6543, "pairscale_test"));
        assert_eq!(
            DispatcherDb::parse("postgresql://kam:pw@db/k")
                .unwrap()
                .port,
            5432
        );
    }

    #[test]
    fn the_password_comes_out_of_the_url_and_back_in() {
        let url = "postgres://kam:p%40ss%3Aword@127.0.0.1:5432/pairscale_test";
        let db = DispatcherDb::parse(url).unwrap();
        assert_eq!(db.password, "p@ss:word");
        assert_eq!(
            db.url_without_password(),
            "postgres://kam@127.0.0.1:5432/pairscale_test"
        );
        assert!(!format!("{db:?}").contains("p@ss"), "{db:?}");
        assert_eq!(db.url(), url);
        assert_eq!(DispatcherDb::parse(&db.url()).unwrap(), db);
    }

    #[test]
    fn a_url_that_lacks_a_part_is_refused_by_name() {
        for (url, needle) in [
            ("postgres://kam@127.0.0.1/k", "password"),
            ("postgres://kam:@127.0.0.1/k", "password"),
            ("postgres://:pw@127.0.0.1/k", "user"),
            ("postgres://kam:pw@127.0.0.1", "database"),
            ("postgres://kam:pw@%2Frun%2Fpostgresql/k", "TCP host"),
        ] {
            let err = DispatcherDb::parse(url).unwrap_err().to_string();
            assert!(err.contains(needle), "{url}: {err}");
        }
        assert!(DispatcherDb::parse("mysql://kam:pw@db/k").is_err());
    }
}
