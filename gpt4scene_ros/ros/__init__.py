"""ROS 2 adapters: message conversions by type, QoS profiles, parameters, fallbacks, the service client."""
