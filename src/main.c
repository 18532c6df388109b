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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sysexits.h>
#include <unistd.h>
#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "activation.h"
#include "config.h"
#include "daemon.h"
#include "kinds/kinds.h"
#include "log.h"

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
		"                             e.g. 127.0.0.1:8080 or [::1]:0\n"
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

static void
notify(const char *state)
{
#ifdef HAVE_LIBSYSTEMD
	int r = sd_notify(0, state);

	/* 0: not under systemd.  A lost READY=1 ends in a start timeout. */
	if (r < 0) {
		errno = -r;
		log_warn("sd_notify %s", state);
	}
#else
	(void)state;
#endif
}

/* Loads path, logging "file:line: reason" on failure. */
static struct config *
load(const char *path)
{
	struct config_error err;
	struct config *cfg = config_load(path, &err);

	if (cfg != NULL)
		return cfg;
	if (err.line > 0)
		log_error("%s:%d: %s", err.file, err.line, err.text);
	else
		log_error("%s: %s", err.file, err.text);
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

static void
reload(struct daemon *d, const char *path)
{
	struct config *cfg;

	notify("RELOADING=1");
	log_info("SIGHUP: reloading %s", path);
	cfg = load(path);
	if (cfg == NULL) {
		log_warnx("reload refused; the running configuration stays");
	} else {
		daemon_reload(d, cfg);
		config_unref(cfg);
	}
	notify("READY=1");
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
	log_error("-l %s: expected ADDRESS:PORT with a numeric address",
		  listen);
	return -1;
}

/*
 * Runs the daemon until SIGTERM or SIGINT; SIGHUP reloads.  Steals cfg.
 * Returns the exit status.  Every signal taskpoold handles is blocked
 * before any thread starts, so that every thread inherits the mask and
 * this one alone takes them, with sigwaitinfo().
 */
static int
serve(struct config *cfg, const struct options *o)
{
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
	notify("READY=1");
	for (;;) {
		if (sigwaitinfo(&sigs, &info) < 0) {
			if (errno != EINTR)
				log_warn("sigwaitinfo");
			continue;
		}
		if (info.si_signo != SIGHUP)
			break;
		reload(&d, o->path);
	}
	notify("STOPPING=1");
	/* A second SIGTERM or SIGINT cuts the drain short. */
	daemon_stop(&d, strsignal(info.si_signo), &stop_sigs);
	log_thread_stop();	/* writes what is still queued */
	return 0;
}

int
main(int argc, char **argv)
{
	struct options o = { .path = DEFAULT_CONFIG };
	struct config *cfg;
	char why[256];
	int status;

	status = parse_options(argc, argv, &o);
	if (status >= 0)
		return status;
	/* Before any thread, as libcurl's global init requires. */
	if (kinds_global_init(why, sizeof(why)) != 0) {
		log_error("%s", why);
		return EXIT_FAILURE;
	}
	cfg = load(o.path);
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
