//! Typed ids: a subscription's, a receipt's and a transaction's id are all text on the wire,
//! but one is never a stand-in for another.

use std::borrow::Borrow;
use std::fmt;

macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// The id as frames carry it.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> $name {
                $name(id.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> $name {
                $name(id)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

text_id! {
    /// A subscription's `id`: chosen by the client in SUBSCRIBE, echoed as `subscription` on
    /// each MESSAGE.
    ///
    /// ```
    /// use stomp_session::SubscriptionId;
    ///
    /// let id = SubscriptionId::from("sub-1");
    /// assert_eq!(id, "sub-1");
    /// assert_eq!(id.to_string(), "sub-1");
    /// ```
    SubscriptionId
}

text_id! {
    /// A `receipt` header's value, echoed as `receipt-id` by the RECEIPT (or the ERROR) that
    /// answers the frame.
    ReceiptId
}

text_id! {
    /// A transaction's name, from BEGIN to its COMMIT or ABORT.
    TransactionId
}
