//! Tenants: the accounts of the businesses using the inbox.

use super::error::{Result, StoreError};
use super::page::{Page, PageRequest};
use super::table::{Store, Write, from_item};
use crate::ids::TenantId;
use crate::keys;
use crate::model::Tenant;

impl Store {
    pub async fn create_tenant(&self, tenant: &Tenant) -> Result<()> {
        self.put(tenant, Write::Create).await
    }

    pub async fn get_tenant(&self, tenant_id: &TenantId) -> Result<Option<Tenant>> {
        self.get(&keys::tenant(tenant_id)).await
    }

    /// Loads a tenant or says which one is missing.
    pub async fn require_tenant(&self, tenant_id: &TenantId) -> Result<Tenant> {
        self.get_tenant(tenant_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("tenant {tenant_id}")))
    }

    /// A tenant as stored, even past its expiry (a terminated tenant the sweep has not finished).
    pub async fn require_tenant_stored(&self, tenant_id: &TenantId) -> Result<Tenant> {
        self.get_stored(&keys::tenant(tenant_id))
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("tenant {tenant_id}")))
    }

    pub async fn save_tenant(&self, tenant: &Tenant) -> Result<()> {
        self.put(tenant, Write::Replace).await
    }

    pub async fn list_tenants(&self, page: PageRequest) -> Result<Page<Tenant>> {
        self.query(&keys::all_tenants(), page).await
    }

    /// A page of tenants as stored, including terminated ones past their expiry that the sweep has not
    /// finished with.
    pub async fn list_tenants_stored(&self, page: PageRequest) -> Result<Page<Tenant>> {
        let (items, next) = self.query_raw(&keys::all_tenants(), &page, false).await?;
        let items = items
            .into_iter()
            .map(from_item)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page { items, next })
    }

    pub async fn list_tenants_all(&self) -> Result<Vec<Tenant>> {
        self.query_all(&keys::all_tenants()).await
    }
}
