//! qgate-gateway
