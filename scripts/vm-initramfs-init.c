/*
 * /init of the policyforge qemu image's initramfs (built by scripts/vm-build.sh, static).
 *
 * The hardware is known (virtio disk, ext4 root), so instead of initramfs-tools (udev, shell
 * scripts: about 7 s under TCG) this loads the modules listed in /modules, in order, mounts
 * root= and runs init= from the kernel command line in it. Errors go to the console and end
 * in a panic (PID 1 exits), which the harness reports.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "pf-initramfs: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* the value of KEY=... on the kernel command line, or fallback */
static const char *cmdline_arg(const char *cmdline, const char *key, const char *fallback)
{
	static char values[2][256];
	static int next;
	size_t n = strlen(key);
	const char *p = cmdline;

	while ((p = strstr(p, key)) != NULL) {
		if ((p == cmdline || p[-1] == ' ') && p[n] == '=') {
			char *out = values[next++ % 2];
			size_t len = strcspn(p + n + 1, " \n");

			if (len >= sizeof(values[0]))
				len = sizeof(values[0]) - 1;
			memcpy(out, p + n + 1, len);
			out[len] = 0;
			return out;
		}
		p += n;
	}
	return fallback;
}

int main(void)
{
	char cmdline[4096] = "", path[512];
	struct timespec tick = {0, 10 * 1000 * 1000};
	FILE *f;
	int fd, i;

	mkdir("/dev", 0755);
	mkdir("/proc", 0755);
	if (mount("devtmpfs", "/dev", "devtmpfs", 0, NULL) && errno != EBUSY)
		die("mount /dev");
	if (mount("proc", "/proc", "proc", 0, NULL))
		die("mount /proc");
	fd = open("/proc/cmdline", O_RDONLY);
	if (fd < 0 || read(fd, cmdline, sizeof(cmdline) - 1) < 0)
		die("read /proc/cmdline");
	close(fd);

	f = fopen("/modules", "r");
	if (!f)
		die("open /modules");
	while (fgets(path, sizeof(path), f)) {
		path[strcspn(path, "\n")] = 0;
		if (!path[0])
			continue;
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			die(path);
		if (syscall(SYS_finit_module, fd, "", 0) && errno != EEXIST)
			die(path);
		close(fd);
	}
	fclose(f);

	const char *root = cmdline_arg(cmdline, "root", "/dev/vda");
	const char *init = cmdline_arg(cmdline, "init", "/sbin/init");
	struct stat st;

	for (i = 0; stat(root, &st) != 0; i++) {    /* the disk appears asynchronously */
		if (i == 1000) {
			errno = ENODEV;
			die(root);
		}
		nanosleep(&tick, NULL);
	}
	mkdir("/root", 0755);
	if (mount(root, "/root", "ext4", 0, NULL))
		die("mount root");
	/* switch to the real root; the initramfs stays in memory (a few MB) */
	if (umount("/proc") || mount("/dev", "/root/dev", NULL, MS_MOVE, NULL))
		die("move /dev");
	if (chdir("/root") || mount(".", "/", NULL, MS_MOVE, NULL) || chroot(".") || chdir("/"))
		die("switch root");
	execl(init, init, (char *)NULL);
	die(init);
	return 1;
}
