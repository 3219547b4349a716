package kernel

// killpoint, when set (the killpoint build only), is called before and
// after every change Real makes to the kernel.
var killpoint func(after bool)
