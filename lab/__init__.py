"""The built-in lab: a local Debian 12 image, a BIND9 master and the portal host."""
