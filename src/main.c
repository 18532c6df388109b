/*
 * main.c - command line, start-up, signals, reload and shutdown.
 *
 * main() only wires things together.  Every signal taskpoold handles is
 * blocked before any thread starts, so all threads inherit the mask and
 * the main thread alone takes them, synchronously, with sigwaitinfo().
 * A second SIGTERM or SIGINT during the drain stops at once.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "activation.h"
#include "config.h"
#include "daemon.h"
#include "kinds/kinds.h"
#include "log.h"
#include "notify.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG SYSCONFDIR "/taskpoold.conf"

static void
usage(FILE *out)
{
	fprintf(out,
		"usage: taskpoold [-tvhV] [-c file] [-l address:port]\n"
		"\n"
		"  -c, --config=file          configuration file\n"
		"                             (default %s)\n"
		"  -l, --listen=address:port  listen here instead of [server] "
		"listen,\n"
		"                             e.g. 127.0.0.1:8080 or [::1]:0;\n"
		"                             https://127.0.0.1:8443 for TLS "
		"(needs\n"
		"                             [server] cert and key)\n"
		"  -t, --test                 check the configuration and exit\n"
		"  -v, --verbose              log more (debug); overrides [log] "
		"level\n"
		"  -h, --help                 show this help and exit\n"
		"  -V, --version              show the version and exit\n"
		"\n"
		"Signals: SIGTERM or SIGINT stop gracefully, SIGHUP reloads "
		"the\nconfiguration.  See taskpoold(8) and "
		"taskpoold.conf(5).\n", DEFAULT_CONFIG);
}

/*
 * Loads path.  On failure logs "file:line: reason", leaves the error in
 * err, and returns NULL.
 */
static struct config *
load(const char *path, struct config_error *err)
{
	struct config *cfg = config_load(path, err);

	if (cfg != NULL)
		return cfg;
	if (err->line > 0)
		log_error("%s:%d: %s", err->file, err->line, err->text);
	else
		log_error("%s: %s", err->file, err->text);
	return NULL;
}

/*
 * Thousands of waiting clients need as many descriptors: raise the soft
 * limit to the hard one (systemd's LimitNOFILE= sets the hard one).
 */
static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		log_warn("cannot raise the open file limit");
}

/* Appends to the string in buf, cutting what does not fit in size. */
static void __attribute__((format(printf, 3, 4)))
append(char *buf, size_t size, const char *fmt, ...)
{
	size_t len = strlen(buf);
	va_list ap;

	if (len + 1 >= size)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
}

/*
 * STATUS= while serving: the counts, then the error of the last refused
 * reload (refused; file "" for none) until a reload succeeds, so that
 * systemctl status shows that the file on disk is not the one in use.
 */
static void
serving_status(struct daemon *d, const struct config_error *refused,
	       char *buf, size_t size)
{
	daemon_status(d, "serving", buf, size);
	if (refused->file[0] == '\0')
		return;
	append(buf, size, "; reload refused: %s", refused->file);
	if (refused->line > 0)
		append(buf, size, ":%d", refused->line);
	append(buf, size, ": %s", refused->text);
}

/*
 * SIGHUP.  READY=1 follows RELOADING=1 whether the file is taken or
 * refused: systemd waits for it either way.  refused gets the error of a
 * refusal, and is emptied once a reload succeeds.
 */
static void
reload(struct daemon *d, const char *path, struct config_error *refused)
{
	char status[NOTIFY_STATUS_MAX];
	struct config *cfg;

	snprintf(status, sizeof(status), "reloading %s", path);
	notify_send(&d->notify, "RELOADING=1", status);
	log_info("SIGHUP: reloading %s", path);
	cfg = load(path, refused);
	if (cfg == NULL) {
		log_warnx("reload refused; the running configuration stays");
	} else {
		refused->file[0] = '\0';
		daemon_reload(d, cfg);
		config_unref(cfg);
	}
	serving_status(d, refused, status, sizeof(status));
	notify_send(&d->notify, "READY=1", status);
}

/* What the command line asks for. */
struct options {
	const char *path;	/* the config file */
	const char *listen;	/* -l, or NULL */
	bool check_only;	/* -t */
	bool verbose;		/* -v */
};

/*
 * Parses the command line into o.  Returns -1 to go on, or the status to
 * exit with at once (--help, --version, a usage error).
 */
static int
parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "test", no_argument, NULL, 't' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "c:l:tvhV", longopts,
				 NULL)) != -1) {
		switch (ch) {
		case 'c': o->path = optarg; break;
		case 'l': o->listen = optarg; break;
		case 't': o->check_only = true; break;
		case 'v':
			o->verbose = true;
			log_set_level(LOG_LEVEL_DEBUG);
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("taskpoold %s\n", PACKAGE_VERSION);
			return 0;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return EX_USAGE;
	}
	return -1;
}

/* -l must be a numeric ADDRESS:PORT; 0 if it is (or is absent). */
static int
check_listen_option(const char *listen)
{
	struct sockaddr_storage ss;
	unsigned len;

	if (listen == NULL || config_parse_listen(listen, &ss, &len) == 0)
		return 0;
	log_error("-l %s: expected ADDRESS:PORT with a numeric address, "
		  "or https://ADDRESS:PORT", listen);
	return -1;
}

/*
 * Runs the daemon until SIGTERM or SIGINT; SIGHUP reloads.  Steals cfg.
 * Returns the exit status.  Every signal taskpoold handles is blocked
 * before any thread starts, so that every thread inherits the mask and
 * this one alone takes them, with sigtimedwait().  Between signals, once
 * a second, STATUS= follows the counts when they changed.
 */
static int
serve(struct config *cfg, const struct options *o)
{
	const struct timespec status_period = { 1, 0 };
	char status[NOTIFY_STATUS_MAX];
	struct config_error refused = { .file = "" };
	struct daemon d;
	sigset_t sigs, stop_sigs;
	siginfo_t info;
	int listen_fd;

	/* Before any thread starts: it unsets LISTEN_PID and LISTEN_FDS. */
	if (activation_take_socket(&listen_fd) != 0) {
		config_unref(cfg);
		return EXIT_FAILURE;
	}
	sigemptyset(&stop_sigs);
	sigaddset(&stop_sigs, SIGINT);
	sigaddset(&stop_sigs, SIGTERM);
	sigs = stop_sigs;
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();

	/*
	 * From here to shutdown, log lines go through the log thread, so that
	 * no thread (the timer least of all) waits for a slow stderr.  Lines
	 * before (config errors, -t) and after are written synchronously.
	 */
	if (log_thread_start(LOG_QUEUE_BYTES) != 0) {
		log_warn("cannot start the log thread");
		if (listen_fd >= 0)
			close(listen_fd);
		config_unref(cfg);
		return EXIT_FAILURE;
	}
	if (daemon_start(&d, cfg, o->listen, listen_fd, o->verbose) != 0) {
		log_thread_stop();
		config_unref(cfg);
		return EXIT_FAILURE;
	}
	config_unref(cfg);
	serving_status(&d, &refused, status, sizeof(status));
	notify_send(&d.notify, "READY=1", status);
	for (;;) {
		if (sigtimedwait(&sigs, &info, &status_period) < 0) {
			if (errno == EAGAIN) {
				serving_status(&d, &refused, status,
					       sizeof(status));
				notify_status(&d.notify, status);
			} else if (errno != EINTR) {
				log_warn("sigtimedwait");
			}
			continue;
		}
		if (info.si_signo != SIGHUP)
			break;
		reload(&d, o->path, &refused);
	}
	/* STOPPING=1 goes out there; a second SIGTERM or SIGINT cuts the
	 * drain short. */
	daemon_stop(&d, strsignal(info.si_signo), &stop_sigs);
	log_thread_stop();	/* writes what is still queued */
	return 0;
}

int
main(int argc, char **argv)
{
	struct options o = { .path = DEFAULT_CONFIG };
	struct config_error err;
	struct config *cfg;
	char why[256];
	int status;

	/* Before any line is logged, and before any thread starts. */
	log_detect_journal();
	status = parse_options(argc, argv, &o);
	if (status >= 0)
		return status;
	/* Before any thread, as libcurl's global init requires. */
	if (kinds_global_init(why, sizeof(why)) != 0) {
		log_error("%s", why);
		return EXIT_FAILURE;
	}
	cfg = load(o.path, &err);
	if (cfg == NULL)
		return EX_CONFIG;
	if (check_listen_option(o.listen) != 0) {
		config_unref(cfg);
		return EX_USAGE;
	}
	if (o.check_only) {
		printf("%s: configuration OK\n", o.path);
		config_unref(cfg);
		return 0;
	}
	return serve(cfg, &o);
}
