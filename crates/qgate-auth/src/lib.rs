//! qgate-auth
