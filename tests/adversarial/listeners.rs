//! Listeners: connections that never handshake, descriptor exhaustion, what reflection lists.
