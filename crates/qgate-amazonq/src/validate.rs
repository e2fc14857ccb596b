//! The Amazon Q service's request rules (protocol doc §2.3), as a pure validator.
//! Placeholder until the simulator work lands.
