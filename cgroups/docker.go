package cgroups

import (
	"errors"
	"fmt"
)

// ErrSystemdDriver is returned (wrapped) by DockerParent when Docker uses the
// systemd cgroup driver.
var ErrSystemdDriver = errors.New("docker uses the systemd cgroup driver")

// DockerParent returns the --cgroup-parent for a pod's containers with
// Docker's cgroupfs driver: the pod cgroup path itself. driver is Docker's
// reported CgroupDriver ("cgroupfs" or "systemd"). The systemd driver would
// put the containers in systemd slices outside the executor's Mesos cgroup,
// where Mesos neither accounts nor limits them, so it is refused.
func DockerParent(podCgroup, driver string) (string, error) {
	if err := CheckDockerDriver(driver); err != nil {
		return "", err
	}
	return podCgroup, nil
}

// CheckDockerDriver refuses a Docker cgroup driver other than cgroupfs
// ("" is taken as cgroupfs, the engine's old default), saying how to
// reconfigure the daemon.
func CheckDockerDriver(driver string) error {
	switch driver {
	case "cgroupfs", "":
		return nil
	case "systemd":
		return fmt.Errorf("%w: its containers would live in systemd slices outside the executor's Mesos cgroup, "+
			"unaccounted and unlimited by Mesos; start dockerd with --exec-opt native.cgroupdriver=cgroupfs "+
			"(or \"exec-opts\": [\"native.cgroupdriver=cgroupfs\"] in daemon.json)", ErrSystemdDriver)
	}
	return fmt.Errorf("unknown docker cgroup driver %q: want cgroupfs", driver)
}
