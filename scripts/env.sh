# Source this file to use the package built by scripts/setup in the current shell.
_gpt4scene_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The colcon and venv scripts read unset variables: relax `set -u` while sourcing them.
case $- in *u*) _gpt4scene_nounset=1; set +u ;; *) _gpt4scene_nounset= ;; esac
# shellcheck disable=SC1091
source "$_gpt4scene_root/.venv/bin/activate"
export AMENT_PREFIX_PATH="$_gpt4scene_root/.venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
# shellcheck disable=SC1091
source "$_gpt4scene_root/.build/install/local_setup.bash"
# The package's commands (player, mapping_node, query_node, gpt4scene-*) by name, as `ros2 run` finds them.
case ":$PATH:" in
  *":$_gpt4scene_root/.build/install/gpt4scene_ros/lib/gpt4scene_ros:"*) ;;
  *) export PATH="$_gpt4scene_root/.build/install/gpt4scene_ros/lib/gpt4scene_ros:$PATH" ;;
esac
export RMW_IMPLEMENTATION=${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}
# Keep DDS discovery on this machine unless the caller chose otherwise.
export ROS_AUTOMATIC_DISCOVERY_RANGE=${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}
# Shared memory large enough for whole images, fast acknowledgements (see the file).
export FASTDDS_DEFAULT_PROFILES_FILE=${FASTDDS_DEFAULT_PROFILES_FILE:-$_gpt4scene_root/config/fastdds.xml}
[ -n "$_gpt4scene_nounset" ] && set -u
unset _gpt4scene_root _gpt4scene_nounset
