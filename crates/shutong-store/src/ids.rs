//! Typed IDs: every table's key as a type of its own, so that a request's ID cannot be passed where a
//! grant's is expected. `typed_id!` makes one (`serde(transparent)`: the wire and the column stay integers).

/// Declares a typed ID: `typed_id!(/// 授权标识 … GrantId);`
#[macro_export]
macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}
