//! Where a generated set keeps a node's keystores (JKS sets), relative to the set's directory.

/// `nodes/NODE/repository/resources/security/FILE`.
pub fn sec(node: &str, file: &str) -> String {
    format!("nodes/{node}/repository/resources/security/{file}")
}

/// A node's TLS keystore in a JKS set.
pub fn tls(node: &str) -> String {
    sec(node, &format!("{node}-tls.jks"))
}

/// A node's primary keystore in a JKS set.
pub fn primary(node: &str) -> String {
    sec(node, "wso2carbon.jks")
}

/// A node's truststore in a JKS set.
pub fn truststore(node: &str) -> String {
    sec(node, "client-truststore.jks")
}
