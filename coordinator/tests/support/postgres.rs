//! A results store on the real PostgreSQL of `LOADGRADE_TEST_POSTGRES_URL`, in a schema of its own that the guard
//! drops.

use loadgrade_coordinator::store::Store;

/// A store in a fresh schema, and a guard that drops the schema.
pub async fn postgres_store(name: &str) -> Option<(Store, SchemaGuard)> {
    let url = super::service_url("POSTGRES")?;
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(&url)
        .await
        .expect("PostgreSQL answers at LOADGRADE_TEST_POSTGRES_URL");
    let schema = format!("loadgrade_test_{name}_{}", std::process::id());
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&admin)
        .await
        .expect("drop");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .expect("create schema");
    let separator = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{separator}options=-c%20search_path%3D{schema}");
    let store = Store::open(&scoped).await.expect("store on PostgreSQL");
    Some((store, SchemaGuard { admin, schema }))
}

pub struct SchemaGuard {
    admin: sqlx::AnyPool,
    schema: String,
}

impl SchemaGuard {
    pub async fn drop_schema(self) {
        let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema))
            .execute(&self.admin)
            .await;
    }
}
